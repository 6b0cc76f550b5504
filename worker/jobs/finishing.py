"""Ending a task from a job: the settlement in its own transaction, then its webhooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from core import queue
from core.settlement import Settled
from worker.context import WorkerContext


async def finish(
    context: WorkerContext,
    settle: Callable[..., Awaitable[Settled | None]],
    task_id: str,
    *args: Any,
    **kwargs: Any,
) -> bool:
    """Run ``settle(conn, task_id, *args, **kwargs)`` (``core.settlement.complete``,
    ``fail`` or ``cancel``) and commit, then enqueue its webhook deliveries. False if the
    task had already moved on (another job won)."""
    async with context.engine.begin() as conn:
        settled = await settle(conn, task_id, *args, **kwargs)
    if settled is None:
        return False
    await queue.enqueue_after_commit(context.redis, *queue.deliveries(settled.deliveries))
    return True
