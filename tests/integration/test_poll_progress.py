"""The progress a running task shows never goes back: each poll hop stores at most what
it saw, never less than what an earlier hop (of any worker, with its own learned
duration) stored, and never 100 before the video is stored. Each transition and each
hop that won is in the task's history (``task_activity``), in order."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import autocommit, driver_autocommit
from core.repo import _driver, activity, tasks
from schemas.clock import utcnow
from schemas.status import ActivityKind, TaskStatus
from tests.integration.conftest import BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_poll_hop_never_lowers_the_stored_progress(
    engine: AsyncEngine, acme: httpx.AsyncClient
):
    created = await acme.post("/v1/videos", json={"prompt": "a fox"})
    assert created.status_code == 200, created.text
    task_id = created.json()["id"]
    async with engine.begin() as conn:
        for status in (TaskStatus.SUBMITTING, TaskStatus.RUNNING):
            before = TaskStatus.QUEUED if status == TaskStatus.SUBMITTING else TaskStatus.SUBMITTING
            assert await tasks.transition(conn, task_id, [before], status, upstream_task_id="t")

    async def hop(progress: int, *, in_transaction: bool) -> int:
        # The worker's way (the driver's statements on PostgreSQL, each committing on its
        # own) and inside a transaction (SQLAlchemy Core) must record the same.
        connecting = engine.begin() if in_transaction else driver_autocommit(engine)
        async with connecting as conn:
            view = await tasks.load_for_poll(conn, task_id)
            assert view is not None and view.status == TaskStatus.RUNNING
            seen = {"latency_ms": 3, "state": "running", "progress": progress}
            assert await tasks.advance_poll(
                conn,
                view,
                seen,
                progress=progress,
                updated_at=utcnow(),
                upstream_response={"data": {"progress": f"{progress}%"}, "_poll": {}},
            )
        return int((await acme.get(f"/v1/videos/{task_id}")).json()["progress"])

    # 94 from a worker that learned the model's time; 21 and 93 from fresher estimates.
    assert [await hop(p, in_transaction=i % 2 == 1) for i, p in enumerate((94, 21, 93, 96))] == [
        94,
        94,
        94,
        96,
    ]

    async with engine.connect() as conn:
        history = await activity.timeline(conn, task_id)
        stale = await tasks.load_for_poll(conn, task_id)
        assert stale is not None
    for connecting in (driver_autocommit, autocommit):
        async with connecting(engine) as conn:
            # The worker's connections take the driver's path on PostgreSQL, Core on SQLite.
            driven = _driver.autocommit(conn)
            assert driven == (engine.dialect.name == "postgresql")
            assert await tasks.load_for_poll(conn, task_id) == stale
            assert await tasks.load_for_poll(conn, "video_none") is None
    async with engine.connect() as conn:
        # Once SQLAlchemy has begun a transaction, the driver would run outside it: Core.
        await activity.timeline(conn, task_id)
        assert not _driver.autocommit(conn)
    assert stale.polls == 4
    assert stale.upstream_response == {"data": {"progress": "96%"}, "_poll": {}}
    assert [
        (row.kind, row.detail.get("status", row.detail.get("progress"))) for row in history
    ] == [
        (ActivityKind.STATUS, "submitting"),
        (ActivityKind.STATUS, "running"),
        *((ActivityKind.POLL, p) for p in (94, 21, 93, 96)),
    ]
    assert [row.at for row in history] == sorted(row.at for row in history)

    # A hop that lost (a duplicate of an earlier one) leaves no row, on either path.
    view = dataclasses.replace(stale, polls=0)
    async with driver_autocommit(engine) as conn:
        assert not await tasks.advance_poll(conn, view, {"latency_ms": 1}, updated_at=utcnow())
    async with engine.begin() as conn:
        assert not await tasks.advance_poll(conn, view, {"latency_ms": 1}, updated_at=utcnow())
        assert len(await activity.timeline(conn, task_id)) == len(history)
        assert (await tasks.load_for_poll(conn, task_id)) == stale
