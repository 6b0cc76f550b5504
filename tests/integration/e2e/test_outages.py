"""Workers ride out dependency outages: Redis stopped for 30 s under a stream of creates,
PostgreSQL stopped for a few seconds. The worker processes stay up (same pids), report
not-ready on ``/readyz`` meanwhile, resume within seconds, and every video completes
with the ledger intact.

Redis is stopped as a restart with persistence would (``SHUTDOWN SAVE``, then started on
the same port, loading its data): while it is down connections are refused. This module
runs its own Redis for that; PostgreSQL is the session's server, restarted in place.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from cli.supervise import Child
from tests.eventually import eventually
from tests.integration.e2e.helpers import create, credits, finished, sim_stats
from tests.integration.stack import Stack, base_env, simulator
from tests.services import HOST, PostgresServer, RedisServer, free_port, wait_until

PORT_ENV = "GOOGLE_VIDEO_WORKER_HEALTH_PORT"
OUTAGE_SECONDS = 30.0  # the figure
DB_OUTAGE_SECONDS = 6.0
BACK_WITHIN = 5.0  # seconds after the outage ends until every worker is ready again
PRICE = 100
GRANT = 100_000
PROMPT = "[sim:duration=100]"  # 1 s at the simulator's time scale of 0.01


@pytest.fixture(scope="module")
def outage_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("outage-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def redis_url(outage_redis: RedisServer) -> str:
    return outage_redis.url


@pytest.fixture(scope="module")
def stack(pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The simulator and two workers, each serving its health port."""
    log_dir = tmp_path_factory.mktemp("outage-logs")
    with simulator(log_dir) as sim_url:
        storage = {"GOOGLE_VIDEO_STORAGE_URL": (log_dir / "storage").as_uri()}
        env = {
            **base_env(pg_url, redis_url, storage, sim_url),
            "GOOGLE_VIDEO_WORKER_DRAIN_SECONDS": "2",
            "GOOGLE_VIDEO_WORKER_HEALTH_HOST": HOST,
        }
        result = Stack(env, sim_url, log_dir)
        try:
            for _ in range(2):
                result.start_worker({PORT_ENV: str(free_port())})
            for worker in result.workers:
                worker.wait_ready(lambda w=worker: _ready_now(w), timeout=30, what=worker.name)
            yield result
        finally:
            result.stop_workers()


@pytest.fixture(autouse=True)
async def long_deadline(admin: httpx.AsyncClient) -> None:
    """Tasks created at the start of an outage must not time out because of it."""
    response = await admin.put("/v1/admin/config", json={"task_timeout_seconds": 300})
    assert response.status_code == 200, response.text


def _port(worker: Child) -> int:
    assert worker.env is not None
    return int(worker.env[PORT_ENV])


def _ready_now(worker: Child) -> bool:
    try:
        return httpx.get(f"http://{HOST}:{_port(worker)}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def _readiness(worker: Child) -> tuple[int, dict[str, Any]]:
    """(status code, body) of the worker's ``/readyz``; (0, {}) if it does not answer."""
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            response = await client.get(f"http://{HOST}:{_port(worker)}/readyz")
    except httpx.HTTPError:
        return 0, {}
    return response.status_code, dict(response.json())


async def _not_ready_for(worker: Child, dependency: str) -> dict[str, Any]:
    _code, body = await eventually(
        lambda: _readiness(worker),
        10,
        until=lambda r: r[0] == 503 and dependency in r[1].get("degraded", []),
        what=f"{worker.name} reporting {dependency} down",
        interval=0.05,
    )
    return body


async def _all_ready(workers: list[Child], deadline: float) -> float:
    """Seconds until every worker's /readyz answers 200."""
    start = time.monotonic()
    for worker in workers:
        await eventually(
            lambda w=worker: _readiness(w),
            deadline,
            until=lambda r: r[0] == 200,
            what=f"{worker.name} ready again",
            interval=0.05,
        )
    return time.monotonic() - start


def _stop_keeping_data(server: RedisServer) -> None:
    """Stop Redis as a restart would: SHUTDOWN SAVE writes its data to disk (the next
    start on the same port loads it); meanwhile connections are refused."""
    with redis.Redis.from_url(server.url) as client:
        client.shutdown(save=True)
    server.stop()


async def _upstream_calls(stack: Stack) -> int:
    stats = await sim_stats(stack)
    return int(stats["submits"]) + int(stats["polls_total"]) + int(stats["downloads_total"])


async def _stop_promptly(worker: Child, within: float) -> float:
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(worker.wait, within)
    assert code == 0, worker.log_tail()
    return time.monotonic() - started


async def test_workers_ride_out_a_30_second_redis_outage_under_load(
    acme: httpx.AsyncClient, stack: Stack, outage_redis: RedisServer, assert_ledger: Any
) -> None:
    workers = list(stack.workers)
    pids = [w.pid for w in workers]
    videos: list[dict[str, Any]] = []

    async def produce(until: float, every: float, label: str) -> int:
        """Create a video every ``every`` seconds until ``until`` (monotonic)."""
        count = 0
        while time.monotonic() < until:
            videos.append(await create(acme, f"{label} {count} {PROMPT}"))  # 200 or it fails
            count += 1
            await asyncio.sleep(every)
        return count

    # Load before the outage, so that jobs are queued and running when Redis goes.
    await produce(time.monotonic() + 2, 0.25, "before")
    await eventually(
        lambda: asyncio.gather(*(acme.get(f"/v1/videos/{v['id']}") for v in videos)),
        20,
        until=lambda rs: sum(r.json()["internal_status"] != "queued" for r in rs) >= 3,
        what="work in flight",
    )

    await asyncio.to_thread(_stop_keeping_data, outage_redis)
    down_at = time.monotonic()
    during = asyncio.create_task(produce(down_at + OUTAGE_SECONDS - 1.5, 1.5, "during"))
    for worker in workers:
        body = await _not_ready_for(worker, "redis")
        assert body["checks"]["database"] == "ok", body
    # A worker started during the outage waits for Redis, and SIGTERM still stops it.
    late = stack.start_worker({PORT_ENV: str(free_port())})
    await eventually(
        lambda: _readiness(late),
        30,
        until=lambda r: (
            r[1].get("checks", {}).get("worker") == "running" and "redis" in r[1]["degraded"]
        ),
        what="the late worker started and waiting for Redis",
    )
    stop_seconds = await _stop_promptly(late, within=10)
    stack.workers.remove(late)
    created_during = await during  # creates kept succeeding
    await asyncio.sleep(max(0.0, down_at + OUTAGE_SECONDS - time.monotonic()))
    assert [w.pid for w in workers] == pids and all(w.alive for w in workers)

    calls_before = await _upstream_calls(stack)
    await asyncio.to_thread(outage_redis.start)
    up_at = time.monotonic()
    first_call = await eventually(
        lambda: _upstream_calls(stack),
        30,
        until=lambda calls: calls > calls_before,
        what="a job calling the upstream after the outage",
        interval=0.05,
    )
    first_job_seconds = time.monotonic() - up_at
    ready_seconds = await _all_ready(workers, BACK_WITHIN)
    done = await asyncio.gather(*(finished(acme, v["id"], deadline=60) for v in videos))
    all_done_seconds = time.monotonic() - up_at

    print(
        f"\nredis outage {up_at - down_at:.1f} s, "
        f"{len(videos)} videos ({created_during} created during it); after it came back: "
        f"workers ready {ready_seconds:.2f} s, first upstream call {first_job_seconds:.2f} s "
        f"({first_call - calls_before} calls), all completed {all_done_seconds:.1f} s; "
        f"SIGTERM during the outage stopped a worker in {stop_seconds:.2f} s"
    )
    assert [v["status"] for v in done] == ["completed"] * len(videos), done
    assert [w.pid for w in workers] == pids and all(w.alive for w in workers)
    balance, held, kinds = await credits(acme)
    assert (balance, held) == (GRANT - PRICE * len(videos), 0)
    assert kinds.count("capture") == len(videos)
    await assert_ledger()


async def test_workers_ride_out_a_database_outage(
    acme: httpx.AsyncClient,
    stack: Stack,
    postgres: PostgresServer,
    engine: Any,
    assert_ledger: Any,
) -> None:
    workers = list(stack.workers)
    pids = [w.pid for w in workers]
    videos = [await create(acme, f"db outage {n} [sim:duration=300]") for n in range(6)]
    await eventually(
        lambda: asyncio.gather(*(acme.get(f"/v1/videos/{v['id']}") for v in videos)),
        20,
        until=lambda rs: all(r.json()["internal_status"] == "running" for r in rs),
        what="every task running (polls scheduled)",
    )

    await asyncio.to_thread(postgres.stop)
    down_at = time.monotonic()
    for worker in workers:
        body = await _not_ready_for(worker, "database")
        assert body["checks"]["redis"] == "ok", body
    await asyncio.sleep(max(0.0, down_at + DB_OUTAGE_SECONDS - time.monotonic()))
    assert [w.pid for w in workers] == pids and all(w.alive for w in workers)

    await asyncio.to_thread(postgres.start)
    up_at = time.monotonic()
    ready_seconds = await _all_ready(workers, BACK_WITHIN)
    done = await asyncio.gather(*(finished(acme, v["id"], deadline=60) for v in videos))
    print(
        f"\ndatabase outage {up_at - down_at:.1f} s: workers ready {ready_seconds:.2f} s and "
        f"all {len(videos)} videos completed {time.monotonic() - up_at:.1f} s after it ended"
    )
    assert [v["status"] for v in done] == ["completed"] * len(videos), done
    assert [w.pid for w in workers] == pids and all(w.alive for w in workers)
    await engine.dispose()  # its pooled connections died with the server
    await assert_ledger()


def test_stopping_redis_keeps_its_data(tmp_path: Path) -> None:
    """The outage above is a restart, not a flush: the queue survives it."""
    with RedisServer(tmp_path) as server:
        with redis.Redis.from_url(server.url) as client:
            client.set("kept", "1")
        _stop_keeping_data(server)
        wait_until(lambda: not server.running, time.monotonic() + 5, what="redis stopped")
        server.start()
        with redis.Redis.from_url(server.url) as client:
            assert client.get("kept") == b"1"
