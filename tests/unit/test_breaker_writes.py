"""Breaker probes of the write bound armed only when bytes stay in the transport's buffer
(``core.redis_writes``), on the worker's own event loop (uvloop; the suite's loop is
asyncio's) and over TLS, whose transport counts only what its TLS layer holds."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop
from redis.asyncio.connection import ConnectionPool
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.redis_writes import bound_writes_in_context
from tests.tls import make_certificates


@pytest.fixture(params=["tcp", "tls"])
def deaf_peer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(URL, CA file) of a server that accepts (and for TLS, shakes hands) and never reads."""
    certificates = make_certificates(tmp_path) if request.param == "tls" else None
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted = listener.accept()[0]
            except TimeoutError:
                continue
            accepted.settimeout(None)
            if certificates is not None:
                accepted = certificates.server_context().wrap_socket(accepted, server_side=True)
            held.append(accepted)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    try:
        if certificates is None:
            yield f"redis://127.0.0.1:{port}", None
        else:
            yield f"rediss://127.0.0.1:{port}", str(certificates.ca_file)
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


async def _write_until_bounded(url: str, ca_file: str | None, size: int) -> None:
    options: dict[str, object] = {"ssl_ca_certs": ca_file} if ca_file else {}
    pool = ConnectionPool.from_url(
        url, socket_timeout=0.3, lib_name=None, lib_version=None, **options
    )
    bound_writes_in_context(pool)
    connection = await pool.get_connection()
    try:
        with pytest.raises(RedisTimeoutError, match="Timeout writing to socket"):
            async with asyncio.timeout(20):  # the test's own guard: never hang
                while True:
                    await connection.send_command("SET", "k", b"x" * size)
        assert not connection.is_connected
    finally:
        await pool.release(connection)
        await pool.disconnect()


@pytest.mark.parametrize("size", [16 * 1024, 512])
def test_small_writes_to_a_deaf_peer_time_out_under_uvloop(
    deaf_peer: tuple[str, str | None], size: int
) -> None:
    """Held: the worker's loop and TLS too; once the buffers fill, the bound fires."""
    url, ca_file = deaf_peer
    uvloop.run(_write_until_bounded(url, ca_file, size))
