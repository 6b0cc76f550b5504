"""At-least-once delivery is harmless: each step, run twice in sequence or racing in
two job runners, changes the task and the ledger once. The jobs run in this process
with a real worker context; the stack's worker process is stopped meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

from core.repo import tasks
from tests.eventually import eventually
from tests.integration.e2e.helpers import create, credits, read_video, sim_stats
from worker.jobs.poll import poll_task
from worker.jobs.store import store_task
from worker.jobs.submit import submit_task


async def test_racing_submits_reach_the_upstream_once(acme, stack, job_ctx):
    video = await create(acme, "twice [sim:duration=1]")
    before = (await sim_stats(stack))["submits"]
    outcomes = await asyncio.gather(*(submit_task(job_ctx, video["id"]) for _ in range(4)))
    assert sorted(outcomes).count("submitted") == 1
    assert (await sim_stats(stack))["submits"] == before + 1
    assert await submit_task(job_ctx, video["id"]) == "skipped"  # and again, later


async def test_duplicate_polls_advance_the_task_once(acme, job_ctx):
    video = await create(acme, "poll twice [sim:duration=1]")
    assert await submit_task(job_ctx, video["id"]) == "submitted"
    await asyncio.gather(poll_task(job_ctx, video["id"], 0), poll_task(job_ctx, video["id"], 0))
    assert (await _task(job_ctx, video["id"])).polls == 1
    assert await poll_task(job_ctx, video["id"], 0) == "skipped"  # a late duplicate of hop 0
    assert (await _task(job_ctx, video["id"])).polls == 1


async def test_racing_stores_capture_once(acme, job_ctx, assert_ledger):
    video = await create(acme, "store twice [sim:duration=1]")
    assert await submit_task(job_ctx, video["id"]) == "submitted"

    async def poll_unless_storing() -> str:
        status = str((await read_video(acme, video["id"]))["internal_status"])
        if status != "storing":
            await _poll_current(job_ctx, video["id"])
        return status

    await eventually(
        poll_unless_storing, 20, until=lambda s: s == "storing", what="storing", interval=0.05
    )
    assert (await read_video(acme, video["id"]))["internal_status"] == "storing"
    outcomes = await asyncio.gather(
        store_task(job_ctx, video["id"]), store_task(job_ctx, video["id"])
    )
    assert outcomes.count("completed") == 1
    assert await store_task(job_ctx, video["id"]) == "skipped"
    done = await read_video(acme, video["id"])
    assert done["status"] == "completed" and done["video_bytes"] > 0
    content = await acme.get(f"/v1/videos/{video['id']}/content", params={"redirect": "0"})
    assert content.content[4:8] == b"ftyp"  # the loser did not delete the winner's object
    assert (await credits(acme))[2].count("capture") == 1
    await assert_ledger()


async def _task(ctx, video_id: str) -> Any:
    async with ctx["app"].engine.connect() as conn:
        task = await tasks.load(conn, video_id)
    assert task is not None
    return task


async def _poll_current(ctx, video_id: str) -> None:
    task = await _task(ctx, video_id)
    if task.status == "running":
        await poll_task(ctx, video_id, task.polls)
