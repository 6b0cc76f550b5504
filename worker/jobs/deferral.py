"""A poll hop the upstream budget put off (`worker.budget.Deferred`): enqueued again, the
same poll position, for the slot it booked or for when to ask again. Not a failure and
not an upstream error: the task's bookkeeping (errors, backoff) is left alone."""

from __future__ import annotations

import time

from core import queue
from core.db import autocommit
from core.repo import tasks
from core.repo.tasks import PollView
from schemas.clock import utcnow
from schemas.status import TaskStatus
from worker.budget import Call
from worker.context import WorkerContext
from worker.jobs.pacing import due_after
from worker.upstream.routing import kind_of


def poll_call(context: WorkerContext, task: PollView) -> Call:
    """The budget's view of a poll hop: how far its task is from its expected finish,
    and the hop's name (a slot it books is found again by it)."""
    submitted = task.upstream_submit_time or task.created_at
    elapsed = (utcnow() - submitted).total_seconds()
    finish_in = context.durations.expected_finish_in(
        kind_of(task.upstream_route), task.model, elapsed
    )
    return Call(finish_in, f"{task.id}:{task.polls}")


async def defer_poll(context: WorkerContext, task: PollView, delay: float) -> str:
    """Enqueue the hop again in `delay` seconds; keep the reconciler off it meanwhile when
    that is further than the due time the last hop left (about a grace from now)."""
    if delay > context.settings.reconcile_grace_seconds / 2:
        async with autocommit(context.engine) as conn:
            await tasks.extend(conn, task.id, TaskStatus.RUNNING, due_after(context, delay))
    variant = f"b{time.time_ns() // 1_000_000}"
    await queue.enqueue_after_commit(
        context.redis, queue.poll(task.id, task.polls, variant=variant, delay=delay)
    )
    return "deferred"
