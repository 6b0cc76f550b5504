"""The worker's outage handling without the servers: what counts as an outage, readiness
and its once-per-change logs, jobs deferred instead of failed, crons skipped while the
database is away, and the reconnect backoff that a stop cuts short. The real outages
(Redis stopped for 30 s, PostgreSQL restarted) are in tests/integration/e2e/test_outages.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis.exceptions
from arq import Retry
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from core.outages import database_unreachable, redis_failed, redis_unreachable
from schemas.settings import Settings
from worker.arq_worker import ArqWorker
from worker.health import Dependency, Phase, WorkerHealth, health_app
from worker.jobs.outage import SKIPPED, deferred_on_outage, recorded, skipped_on_outage
from worker.options import worker_options
from worker.reconnect import Stopping, patiently


class StartingUp(Exception):
    """What asyncpg raises on connect while PostgreSQL starts (SQLSTATE 57P03)."""

    sqlstate = "57P03"


class UniqueViolation(Exception):
    sqlstate = "23505"


def _dbapi(orig: Exception, *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError("SELECT 1", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
        StartingUp("the database system is starting up"),
        _dbapi(Exception("connection was closed"), invalidated=True),
        _dbapi(StartingUp("the database system is shutting down")),
    ],
)
def test_database_outages(exc: Exception) -> None:
    assert database_unreachable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("a bug"),
        IntegrityError("INSERT", {}, UniqueViolation("duplicate key")),
        FileNotFoundError("not a connection"),
    ],
)
def test_errors_that_are_not_database_outages(exc: Exception) -> None:
    assert not database_unreachable(exc)


def test_redis_outages() -> None:
    assert redis_unreachable(redis.exceptions.ConnectionError("refused"))
    assert redis_unreachable(redis.exceptions.BusyLoadingError("loading the dataset"))
    assert redis_unreachable(redis.exceptions.TimeoutError())
    assert not redis_unreachable(redis.exceptions.ResponseError("WRONGTYPE"))
    assert not redis_unreachable(redis.exceptions.WatchError("the key changed"))


def test_a_redis_refusing_writes_ends_the_arq_loop_but_a_bug_ends_the_process() -> None:
    oom = redis.exceptions.ResponseError("OOM command not allowed when used memory > maxmemory")
    assert redis_failed(oom) and not redis_unreachable(oom)
    assert not redis_failed(ValueError("a bug"))


def test_a_watch_that_lost_its_connection_is_a_redis_outage() -> None:
    try:
        try:
            raise redis.exceptions.ConnectionError("Connection reset by peer")
        except redis.exceptions.ConnectionError:  # redis-py raises it inside the handler
            raise redis.exceptions.WatchError("A ConnectionError occurred on watch")  # noqa: B904
    except redis.exceptions.WatchError as exc:
        assert redis_unreachable(exc)


def test_readiness_follows_each_dependency_and_logs_each_change_once() -> None:
    health = WorkerHealth()
    client = TestClient(health_app(health))
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 503  # starting: nothing checked yet

    with capture_logs() as logs:
        health.phase = Phase.RUNNING
        health.up(Dependency.DATABASE)
        health.polled()
        assert client.get("/readyz").status_code == 200
        for _ in range(3):
            health.down(Dependency.REDIS, redis.exceptions.ConnectionError("refused"))
        answer = client.get("/readyz")
        health.polled()
        health.polled()

    assert answer.status_code == 503
    assert answer.json() == {
        "status": "unavailable",
        "checks": {"redis": "ConnectionError: refused", "database": "ok", "worker": "running"},
        "degraded": ["redis"],
    }
    assert client.get("/readyz").status_code == 200
    assert [(e["event"], e["dependency"]) for e in logs] == [
        ("dependency_down", "redis"),
        ("dependency_up", "redis"),
    ]


def test_a_stopping_worker_is_not_ready() -> None:
    health = WorkerHealth()
    health.up(Dependency.DATABASE)
    health.polled()
    health.phase = Phase.STOPPING
    assert health.readiness().degraded == ["worker"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(environment="test", data_dir=tmp_path, retry_base_seconds=0.5)


def _ctx(settings: Settings, job_try: int) -> dict[str, Any]:
    health = WorkerHealth()
    return {"app": SimpleNamespace(settings=settings), "health": health, "job_try": job_try}


async def test_a_job_that_meets_a_database_outage_is_deferred_with_backoff(
    settings: Settings,
) -> None:
    async def job(ctx: dict[str, Any], task_id: str) -> str:
        raise ConnectionRefusedError(111, "Connect call failed")

    ctx = _ctx(settings, job_try=3)
    with pytest.raises(Retry) as retry:
        await deferred_on_outage(job)(ctx, "task")
    assert retry.value.defer_score == 2000  # 0.5 s doubled per try
    assert ctx["health"].database_suspect.is_set()  # the watch checks at once


async def test_a_job_that_fails_otherwise_still_fails(settings: Settings) -> None:
    async def job(ctx: dict[str, Any], task_id: str) -> str:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await deferred_on_outage(job)(_ctx(settings, 1), "task")


async def test_a_cron_that_meets_a_database_outage_ends_quietly(settings: Settings) -> None:
    async def cron(ctx: dict[str, Any]) -> int:
        raise _dbapi(Exception("connection was closed"), invalidated=True)

    assert await skipped_on_outage(cron)(_ctx(settings, 1)) == SKIPPED


async def test_a_write_that_cannot_be_redone_is_retried_through_a_short_outage() -> None:
    tries = 0

    async def write() -> str:
        nonlocal tries
        tries += 1
        if tries < 3:
            raise ConnectionRefusedError(111, "Connect call failed")
        return "running"

    assert await recorded(write, within=10) == "running"
    assert tries == 3


async def test_a_write_gives_up_after_its_time_or_at_once_for_a_bug() -> None:
    async def down() -> str:
        raise ConnectionRefusedError(111, "Connect call failed")

    async def bug() -> str:
        raise ValueError("a bug")

    with pytest.raises(ConnectionRefusedError):
        await recorded(down, within=0.3)
    with pytest.raises(ValueError, match="a bug"):
        await recorded(bug, within=10)


async def test_crons_due_while_the_database_is_down_are_skipped(settings: Settings) -> None:
    health = WorkerHealth()  # the database not up: nothing may be enqueued
    options = {**worker_options(settings), "handle_signals": False}
    worker = ArqWorker(health=health, stop=asyncio.Event(), **options)
    now = datetime.now(UTC)
    for cron in worker.cron_jobs:
        cron.next_run = now - timedelta(minutes=10)
    await worker.run_cron(now, 0.5)  # with no Redis pool: an enqueue would raise
    assert all(cron.next_run >= now + timedelta(seconds=1) for cron in worker.cron_jobs)


async def test_backoff_retries_outages_until_they_pass() -> None:
    calls = 0
    async for attempt in patiently(asyncio.Event(), redis_unreachable):
        with attempt:
            calls += 1
            if calls < 3:
                raise redis.exceptions.ConnectionError("refused")
    assert calls == 3


async def test_backoff_lets_other_errors_through() -> None:
    with pytest.raises(ValueError):
        async for attempt in patiently(asyncio.Event(), redis_unreachable):
            with attempt:
                raise ValueError("a bug")


async def test_a_stop_cuts_the_backoff_short() -> None:
    stop = asyncio.Event()
    stop.set()
    with pytest.raises(Stopping):
        async for attempt in patiently(stop, redis_unreachable):
            with attempt:
                raise redis.exceptions.ConnectionError("refused")
