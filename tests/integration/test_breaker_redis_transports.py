"""Breaker probes of ``core.redis_writes`` (05644cd) on the transports a REDIS_URL may name
besides plain TCP: ``rediss://`` (a real TLS redis-server, the CA trusted through the URL)
and ``unix://``. The pools the product builds (the API's queue client, the worker's
pool, the API's rate limits) talk through them; stopped with SIGSTOP, a command fails
as redis-py's TimeoutError within its bound instead of hanging, and after SIGCONT the
same pool works again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from cli.supervise import HOST
from core.queue_codec import queue_client
from core.redis_writes import _ContextTimedWrites
from schemas.settings import Settings
from service.app import create_app
from service.ratelimit import RateLimits, Rule
from tests.services import free_port
from tests.tls import make_certificates
from worker.supervisor import open_redis


@dataclass
class _Redis:
    process: subprocess.Popen[bytes]
    tls_url: str
    unix_url: str


@pytest.fixture(scope="module")
def redis_tls_unix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Redis]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server not installed")
    folder = tmp_path_factory.mktemp("redis-tls")
    certificates = make_certificates(folder)
    port, socket_path = free_port(), folder / "redis.sock"
    process = subprocess.Popen(
        [
            executable,
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            HOST,
            "--tls-cert-file",
            str(certificates.cert_file),
            "--tls-key-file",
            str(certificates.cert_file),
            "--tls-ca-cert-file",
            str(certificates.ca_file),
            "--tls-auth-clients",
            "no",
            "--unixsocket",
            str(socket_path),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not socket_path.exists():
        assert process.poll() is None and time.monotonic() < deadline, "redis-server failed"
        time.sleep(0.02)
    try:
        yield _Redis(
            process,
            f"rediss://{HOST}:{port}/0?ssl_ca_certs={certificates.ca_file}",
            f"unix://{socket_path}?db=0",
        )
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        process.wait(10)


def _url(redis: _Redis, kind: str) -> str:
    return redis.tls_url if kind == "tls" else redis.unix_url


@pytest.mark.parametrize("kind", ["tls", "unix"])
async def test_the_queue_client_writes_in_context_and_rides_out_a_sigstop(
    redis_tls_unix: _Redis, kind: str
) -> None:
    client = queue_client(_url(redis_tls_unix, kind), connect_timeout=1.0, timeout=0.5)
    try:
        assert issubclass(client.connection_pool.connection_class, _ContextTimedWrites)
        job = await client.enqueue_job("probe", _job_id=f"probe-{kind}")
        assert job is not None
        os.kill(redis_tls_unix.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError):
                await client.enqueue_job("probe", _job_id=f"probe-{kind}-during")
            assert time.monotonic() - started < 2.5
        finally:
            os.kill(redis_tls_unix.process.pid, signal.SIGCONT)
        assert await client.ping()
        assert await client.exists(f"arq:job:probe-{kind}") == 1
    finally:
        await client.aclose()


@pytest.mark.parametrize("kind", ["tls", "unix"])
async def test_the_worker_pool_speaks_each_transport(redis_tls_unix: _Redis, kind: str) -> None:
    pool = open_redis(Settings(redis_url=_url(redis_tls_unix, kind)))
    try:
        assert issubclass(pool.connection_pool.connection_class, _ContextTimedWrites)
        await pool.set("breaker", b"x" * 1_000_000)  # a write larger than one TLS record
        assert len(await pool.get("breaker") or b"") == 1_000_000
    finally:
        await pool.aclose()


@pytest.mark.parametrize("kind", ["tls", "unix"])
async def test_the_rate_limits_speak_each_transport(redis_tls_unix: _Redis, kind: str) -> None:
    limits = RateLimits(_url(redis_tls_unix, kind))
    try:
        rule = Rule(f"breaker-{kind}", 2, 60)
        answers = [await limits.hit(rule, "who") for _ in range(3)]
        assert answers[:2] == [None, None] and isinstance(answers[2], int), answers
    finally:
        await limits.close()


async def test_the_api_starts_and_serves_on_a_unix_socket_redis(
    redis_tls_unix: _Redis, settings: Settings
) -> None:
    app = create_app(settings.model_copy(update={"redis_url": redis_tls_unix.unix_url}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["redis"] == "ok", ready.json()
