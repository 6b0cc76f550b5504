"""The progress a running task shows never goes back: each poll hop stores at most what
it saw, never less than what an earlier hop (of any worker, with its own learned
duration) stored, and never 100 before the video is stored."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from core.repo import tasks
from schemas.clock import utcnow
from schemas.status import TaskStatus


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

    async def hop(progress: int) -> int:
        async with engine.begin() as conn:
            view = await tasks.load_for_poll(conn, task_id)
            assert view is not None
            assert await tasks.advance_poll(conn, view, progress=progress, updated_at=utcnow())
        return int((await acme.get(f"/v1/videos/{task_id}")).json()["progress"])

    # 94 from a worker that learned the model's time; 21 and 93 from fresher estimates.
    assert [await hop(p) for p in (94, 21, 93, 96)] == [94, 94, 94, 96]
