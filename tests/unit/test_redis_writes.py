"""core.redis_writes: the write bound keeps redis-py's errors and disconnects, without a
Task per command, for every kind of connection a URL chooses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import (
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.redis_writes import _ContextTimedWrites, bound_writes_in_context

BIG = b"x" * (64 * 1024 * 1024)  # more than loopback buffers hold: the write blocks


@pytest.fixture
async def deaf_server() -> AsyncIterator[tuple[int, list[asyncio.StreamWriter]]]:
    """A TCP server that accepts connections and never reads from them."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, held
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def _client(port: int, timeout: float | None) -> Redis:
    # No CLIENT SETINFO on connect: the deaf server would never answer it.
    pool = ConnectionPool.from_url(
        f"redis://127.0.0.1:{port}", socket_timeout=timeout, lib_name=None, lib_version=None
    )
    bound_writes_in_context(pool)
    return Redis(connection_pool=pool)


async def test_a_blocked_write_times_out_as_redis_py_reports_it(
    deaf_server: tuple[int, list[asyncio.StreamWriter]],
) -> None:
    port, _ = deaf_server
    client = _client(port, 0.3)
    connection = await client.connection_pool.get_connection()
    try:
        assert isinstance(connection, _ContextTimedWrites)
        with pytest.raises(RedisTimeoutError, match="Timeout writing to socket"):
            await connection.send_command("SET", "k", BIG)
        assert not connection.is_connected  # a half-written command: the connection is gone
    finally:
        await client.connection_pool.release(connection)
        await client.aclose()


async def test_a_cancelled_write_disconnects_and_propagates(
    deaf_server: tuple[int, list[asyncio.StreamWriter]],
) -> None:
    port, _ = deaf_server
    client = _client(port, None)  # unbounded, as without a socket timeout
    connection = await client.connection_pool.get_connection()
    try:
        write = asyncio.create_task(connection.send_command("SET", "k", BIG))
        await asyncio.sleep(0.3)
        assert not write.done()  # no bound: it waits for the peer
        write.cancel()
        with pytest.raises(asyncio.CancelledError):
            await write
        assert not connection.is_connected
    finally:
        await client.connection_pool.release(connection)
        await client.aclose()


async def test_a_write_to_a_closed_peer_is_a_connection_error(
    deaf_server: tuple[int, list[asyncio.StreamWriter]],
) -> None:
    port, held = deaf_server
    client = _client(port, 2.0)
    connection = await client.connection_pool.get_connection()
    try:
        await connection.connect()
        await asyncio.sleep(0.1)
        for writer in held:  # the peer resets the connection
            writer.transport.abort()
        await asyncio.sleep(0.1)
        with pytest.raises((RedisConnectionError, RedisTimeoutError)):
            for _ in range(50):  # the first writes may still fit the buffers
                await connection.send_command("SET", "k", BIG[: 1024 * 1024])
        assert not connection.is_connected
    finally:
        await client.connection_pool.release(connection)
        await client.aclose()


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("rediss://127.0.0.1:6380/0", SSLConnection),
        ("unix:///tmp/redis.sock", UnixDomainSocketConnection),
    ],
)
def test_the_kind_of_connection_the_url_chose_is_kept(url: str, kind: type) -> None:
    pool = ConnectionPool.from_url(url)
    bound_writes_in_context(pool)
    bound_writes_in_context(pool)  # twice is once
    assert issubclass(pool.connection_class, kind)
    assert issubclass(pool.connection_class, _ContextTimedWrites)
    assert pool.connection_class.__mro__.count(_ContextTimedWrites) == 1


async def test_every_pool_of_the_product_writes_in_context() -> None:
    """The worker's pool, the API's queue client and its rate limits (all three send the
    hot paths' commands) open timed-write connections."""
    from core.queue_codec import queue_client
    from schemas.settings import Settings
    from service.ratelimit import RateLimits
    from worker.supervisor import open_redis

    url = "redis://127.0.0.1:1/0"  # never connected to
    limits = RateLimits(url)
    pools = [
        open_redis(Settings(redis_url=url)).connection_pool,
        queue_client(url, connect_timeout=1, timeout=1).connection_pool,
        limits._storage.bridge.get_connection().connection_pool,
    ]
    try:
        for pool in pools:
            assert issubclass(pool.connection_class, _ContextTimedWrites)
    finally:
        for pool in pools:
            await pool.disconnect()


async def test_small_writes_to_a_deaf_peer_still_time_out_once_the_socket_is_full(
    deaf_server: tuple[int, list[asyncio.StreamWriter]],
) -> None:
    """The bound is armed only when bytes stay in the transport's buffer; writes the
    kernel takes need none, and the first that it does not take is bounded."""
    port, _ = deaf_server
    client = _client(port, 0.3)
    connection = await client.connection_pool.get_connection()
    try:
        with pytest.raises(RedisTimeoutError, match="Timeout writing to socket"):
            async with asyncio.timeout(30):  # the test's own guard: never hang
                for _ in range(1_000_000):
                    await connection.send_command("SET", "k", b"x" * 16 * 1024)
        assert not connection.is_connected
    finally:
        await client.connection_pool.release(connection)
        await client.aclose()


async def test_a_write_the_socket_takes_whole_arms_no_timer(
    deaf_server: tuple[int, list[asyncio.StreamWriter]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = deaf_server
    armed: list[float | None] = []
    timeout = asyncio.timeout

    def counted(delay: float | None) -> asyncio.Timeout:
        armed.append(delay)
        return timeout(delay)

    client = _client(port, 5.0)
    connection = await client.connection_pool.get_connection()
    try:
        await connection.connect()
        monkeypatch.setattr("core.redis_writes.asyncio.timeout", counted)
        for _ in range(20):
            await connection.send_command("PING")
        assert armed == []
        assert connection.is_connected
    finally:
        await client.connection_pool.release(connection)
        await client.aclose()
