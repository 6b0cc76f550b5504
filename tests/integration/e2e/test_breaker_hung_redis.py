"""Breaker probe of the Redis writes under ``asyncio.timeout`` and ARQ's bookkeeping written
directly (05644cd): Redis stopped with SIGSTOP (it accepts, buffers and never answers)
while videos are being polled, then continued. Creates answer meanwhile; the worker rides
it out and every video completes; each upstream task is queried about as often as its
hops say (no second poll chain from a hop whose finish or enqueue met the hang); the
ledger is exact."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from cli.localservices import RedisServer
from core.repo import tasks
from tests.eventually import eventually
from tests.integration.e2e.helpers import create, credits, finished, sim_stats
from tests.integration.stack import Stack, base_env, simulator

PROMPT = "[sim:duration=800]"  # 8 s at the simulator's time scale of 0.01
STOPPED_SECONDS = 6.0


@pytest.fixture(scope="module")
def hung_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("hung-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def redis_url(hung_redis: RedisServer) -> str:
    return hung_redis.url


@pytest.fixture(scope="module")
def stack(pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("hung-redis-logs")
    with simulator(log_dir) as sim_url:
        storage = {"GOOGLE_VIDEO_STORAGE_URL": (log_dir / "storage").as_uri()}
        env = base_env(pg_url, redis_url, storage, sim_url)
        result = Stack(env, sim_url, log_dir)
        result.start_worker()
        try:
            yield result
        finally:
            result.stop_workers()


@pytest.fixture(autouse=True)
async def long_deadline(admin: httpx.AsyncClient) -> None:
    response = await admin.put("/v1/admin/config", json={"task_timeout_seconds": 300})
    assert response.status_code == 200, response.text


async def _task(engine: AsyncEngine, task_id: str) -> Any:
    async with engine.connect() as conn:
        return await tasks.load(conn, task_id)


async def test_a_sigstopped_redis_costs_time_not_videos_or_extra_polls(
    acme: httpx.AsyncClient,
    stack: Stack,
    hung_redis: RedisServer,
    engine: AsyncEngine,
    assert_ledger: Any,
) -> None:
    videos = [await create(acme, f"hung {i} {PROMPT}") for i in range(3)]
    for video in videos:
        await eventually(
            lambda v=video: _task(engine, v["id"]),
            30,
            until=lambda t: t is not None and t.polls >= 2,
            what="polling under way",
            interval=0.05,
        )
    pid = hung_redis.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        during = await create(acme, f"during the hang {PROMPT}")
        took = time.monotonic() - started
        await asyncio.sleep(max(0.0, STOPPED_SECONDS - took))
    finally:
        os.kill(pid, signal.SIGCONT)
    assert took < 6, took  # rate limit (0.5 s) + enqueue (2 s) at most, not the hang
    assert stack.workers[0].alive, stack.workers[0].log_tail()

    done = [await finished(acme, v["id"], deadline=90) for v in [*videos, during]]
    assert [d["status"] for d in done] == ["completed"] * 4, done
    _balance, held, kinds = await credits(acme)
    assert held == 0 and kinds.count("capture") == 4 and "release" not in kinds
    await assert_ledger()

    queries = (await sim_stats(stack))["polls"]
    for video in [*videos, during]:
        task = await _task(engine, video["id"])
        asked = int(queries[task.upstream_task_id])
        # Each hop is one query and the one that saw it finished one more; a hop cut
        # by the hang may be asked again once (its retry, or the reconciler's job).
        assert asked <= task.polls + 1 + 3, (video["id"], asked, task.polls)
