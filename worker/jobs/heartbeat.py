"""Keeping the reconciler away from a long step that is still making progress."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from core.db import autocommit
from core.repo import tasks
from schemas.status import TaskStatus
from worker.context import WorkerContext
from worker.jobs.pacing import later


@contextlib.asynccontextmanager
async def heartbeat(
    context: WorkerContext, task_id: str, status: TaskStatus
) -> AsyncIterator[None]:
    """While the block runs, keep ``next_attempt_at`` one reconcile grace ahead
    (refreshed every third of it) as long as the task stays in ``status``."""
    grace = context.settings.reconcile_grace_seconds

    async def beat() -> None:
        while True:
            async with autocommit(context.engine) as conn:
                await tasks.extend(conn, task_id, status, later(grace))
            await asyncio.sleep(grace / 3)

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
