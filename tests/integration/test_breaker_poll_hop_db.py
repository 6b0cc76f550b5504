"""Breaker probes of the poll hop's connection (05644cd, ``core.db.driver_autocommit``): a
pooled connection with no isolation switch, its statements run on the driver. On
PostgreSQL with every backend of the pool terminated between hops, and on SQLite: each hop
that meets a dead connection fails as an outage (retried, as the job is), the connection
is not handed out again, and the poll counter and the task's history stay exact;
duplicate concurrent hops of one task advance it once."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import driver_autocommit, make_engine
from core.outages import database_unreachable
from core.repo import _driver, activity, tasks
from core.repo.tasks import PollView
from schemas.clock import utcnow
from schemas.status import ActivityKind, TaskStatus
from tests.integration.conftest import BACKENDS

T = TypeVar("T")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _running(engine: AsyncEngine, acme: httpx.AsyncClient) -> str:
    created = await acme.post("/v1/videos", json={"prompt": "a hop"})
    assert created.status_code == 200, created.text
    task_id = str(created.json()["id"])
    async with engine.begin() as conn:
        assert await tasks.transition(conn, task_id, [TaskStatus.QUEUED], TaskStatus.SUBMITTING)
        assert await tasks.transition(
            conn, task_id, [TaskStatus.SUBMITTING], TaskStatus.RUNNING, upstream_task_id="u"
        )
    return task_id


async def _as_the_job(step: Callable[[], Awaitable[T]], failures: list[BaseException]) -> T:
    """Retried while the database is unreachable, as the worker retries a job (arq.Retry)."""
    for _ in range(6):
        try:
            return await step()
        except DBAPIError as exc:
            assert database_unreachable(exc), exc
            failures.append(exc)
    raise AssertionError(f"still failing after 6 tries: {failures[-1]!r}")


async def _load(engine: AsyncEngine, task_id: str) -> PollView:
    async with driver_autocommit(engine) as conn:
        view = await tasks.load_for_poll(conn, task_id)
    assert view is not None
    return view


async def _advance(engine: AsyncEngine, view: PollView, n: int) -> bool:
    async with driver_autocommit(engine) as conn:
        return await tasks.advance_poll(
            conn,
            view,
            {"latency_ms": 1, "state": "running", "progress": n},
            progress=n,
            updated_at=utcnow(),
            upstream_response={"n": n},
        )


async def _terminate_others(engine: AsyncEngine, url: str) -> int:
    """pg_terminate_backend every other backend of the test database (the pool's)."""
    killer = make_engine(url, pool_size=1)
    try:
        async with killer.connect() as conn:
            killed = (
                await conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        " AND backend_type = 'client backend'"
                    )
                )
            ).scalar_one()
    finally:
        await killer.dispose()
    await asyncio.sleep(0.05)
    return int(killed)


async def test_hops_across_terminated_backends_lose_nothing_and_count_exactly(
    engine: AsyncEngine, acme: httpx.AsyncClient
) -> None:
    task_id = await _running(engine, acme)
    url = engine.url.render_as_string(hide_password=False)
    failures: list[BaseException] = []
    hops = 6
    for n in range(hops):
        # Several connections in the pool, then every one of them killed under it.
        await asyncio.gather(*(_load(engine, task_id) for _ in range(3)))
        if engine.dialect.name == "postgresql":
            assert await _terminate_others(engine, url) >= 1
        view = await _as_the_job(lambda: _load(engine, task_id), failures)
        assert view.polls == n
        assert await _as_the_job(lambda v=view, k=n: _advance(engine, v, k), failures)

    final = await _load(engine, task_id)
    assert final.polls == hops and final.status == TaskStatus.RUNNING
    async with engine.connect() as conn:
        history = await activity.timeline(conn, task_id)
    assert [r.detail.get("progress") for r in history if r.kind == ActivityKind.POLL] == list(
        range(hops)
    )
    if engine.dialect.name == "postgresql":
        # Every dead connection costs at most one failed statement: never handed out twice.
        assert len(failures) <= hops * 3, failures


async def test_duplicate_concurrent_hops_of_one_task_advance_it_once(
    engine: AsyncEngine, acme: httpx.AsyncClient
) -> None:
    task_id = await _running(engine, acme)
    view = await _load(engine, task_id)
    won = await asyncio.gather(*(_advance(engine, view, 50) for _ in range(8)))
    assert sorted(won) == [False] * 7 + [True]
    after = await _load(engine, task_id)
    assert after.polls == view.polls + 1
    async with engine.connect() as conn:
        history = await activity.timeline(conn, task_id)
    assert [r.kind for r in history].count(ActivityKind.POLL) == 1


@pytest.mark.parametrize("query", ["", "?pgbouncer=true"], ids=["direct", "pooler"])
async def test_hops_cancelled_mid_statement_leave_no_connection_inside_a_transaction(
    pg_url: str, query: str
) -> None:
    # A job timeout or a shutdown cancels a hop wherever it is. Behind a transaction pooler
    # each driver statement runs in a transaction of asyncpg's, which marks it begun before
    # its BEGIN is sent: a connection cancelled there, pooled again, would run every later
    # statement inside that transaction and never commit (found by a breaker session).
    engine = make_engine(pg_url + query, pool_size=4)
    table = "breaker_cancelled_hops"
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE TABLE IF NOT EXISTS {table} (n int)"))
            await conn.execute(text(f"TRUNCATE {table}"))

        async def hop(n: int) -> None:
            async with driver_autocommit(engine) as conn:
                await _driver.fetchrow(conn, "SELECT pg_sleep(0.004)")
                await _driver.execute(conn, f"INSERT INTO {table} VALUES ($1)", n)  # noqa: S608

        rng = random.Random(7)
        for _ in range(120):
            running = asyncio.create_task(hop(-1))
            await asyncio.sleep(rng.uniform(0, 0.012))
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        for n in range(12):  # each on some pooled connection: all must commit
            await hop(n)

        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        async with engine.connect() as conn:
            stored = (
                await conn.execute(text(f"SELECT n FROM {table} WHERE n >= 0 ORDER BY n"))  # noqa: S608
            ).scalars()
            assert list(stored) == list(range(12))
            stuck = await conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state LIKE 'idle in transaction%'"
                )
            )
            assert stuck.scalar_one() == 0
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        await engine.dispose()
