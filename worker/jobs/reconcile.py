"""reconcile: Redis is a cache of work, the database the copy that matters
(docs/architecture.md, "Queue").

Every few seconds, in every worker replica, tasks whose next step is overdue are
claimed (a conditional bump of ``next_attempt_at``, so one replica wins each task) and
enqueued again under a recovery job id (``core.queue.recovery``). Duplicates are
harmless because every job re-checks the task's state before acting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from core import queue, settlement
from core.metrics import RECONCILER_CLAIMS, RECONCILER_RUNS
from core.repo import events, tasks
from core.repo.events import Due
from core.repo.tasks import Overdue, PurgeDue
from schemas.clock import utcnow
from schemas.status import ACTIVE, TaskStatus
from worker.context import WorkerContext, wctx
from worker.jobs.deadline import expired, timeout_failure
from worker.jobs.finishing import finish
from worker.jobs.submit import ambiguous

BATCH = 500
T = TypeVar("T")

log = structlog.get_logger(__name__)

# Every kind of claim at 0 from the start: the dashboard shows 0, not "no data".
CLAIM_KINDS = (*sorted(map(str, ACTIVE)), "expired", "catch_up", "delivery", "purge")
for _kind in CLAIM_KINDS:
    RECONCILER_CLAIMS.labels(_kind)


async def reconcile(ctx: dict[str, Any]) -> int:
    context = wctx(ctx)
    now = utcnow()
    async with context.engine.connect() as conn:
        late = await tasks.overdue(conn, now, limit=BATCH)
    recovered = 0
    for task in late:
        recovered += await _recover(context, task)
    redelivered = await _redeliver(context)
    repurged = await _repurge(context)
    RECONCILER_RUNS.inc()
    if recovered or redelivered or repurged:
        log.info("reconciled", tasks=recovered, deliveries=redelivered, purges=repurged)
    return recovered + redelivered + repurged


async def _requeue(
    context: WorkerContext,
    rows: Sequence[T],
    claim: Callable[[AsyncConnection, T, datetime], Awaitable[bool]],
    job_of: Callable[[T], queue.Job],
    kind: str,
    until: datetime,
) -> int:
    """Claim each row (pushing its due time to ``until``: one replica wins it) and enqueue
    its job; the number enqueued."""
    count = 0
    for row in rows:
        async with context.engine.begin() as conn:
            if not await claim(conn, row, until):
                continue
        RECONCILER_CLAIMS.labels(kind).inc()
        await queue.enqueue_after_commit(context.redis, job_of(row))
        count += 1
    return count


def _grace(context: WorkerContext) -> timedelta:
    return timedelta(seconds=context.settings.reconcile_grace_seconds)


async def _repurge(context: WorkerContext) -> int:
    """Deleted videos whose objects are still there: the purge job was lost (killed
    worker, flushed Redis, failed enqueue) or ran out of tries against a failing store."""
    now = utcnow()
    async with context.engine.connect() as conn:
        late = await tasks.purges_due(conn, now, limit=BATCH)

    def job_of(due: PurgeDue) -> queue.Job:
        return queue.purge_video(due.id, variant=queue.recovery(due.next_attempt_at))

    return await _requeue(context, late, tasks.claim_purge, job_of, "purge", now + _grace(context))


async def catch_up(context: WorkerContext) -> int:
    """After a Redis outage: enqueue the submit of every queued task now, overdue or not.

    The API commits a create and then enqueues its submit; during the outage that
    enqueue failed, and waiting until such a task is overdue would add up to a reconcile
    grace to the outage. A queued task whose submit job did survive gets a duplicate,
    which finds the task no longer queued and does nothing. Claimed like an overdue task,
    so one replica enqueues each. Returns how many were enqueued.
    """
    until = utcnow() + _grace(context)
    async with context.engine.connect() as conn:
        waiting = await tasks.overdue(conn, until, BATCH, [TaskStatus.QUEUED])

    def job_of(task: Overdue) -> queue.Job:
        return queue.submit(task.id, variant=queue.recovery(task.next_attempt_at))

    return await _requeue(context, waiting, tasks.claim_overdue, job_of, "catch_up", until)


async def _redeliver(context: WorkerContext) -> int:
    """Deliveries whose job was lost (killed worker, flushed Redis, failed enqueue)."""
    grace, now = _grace(context), utcnow()
    async with context.engine.connect() as conn:
        late = await events.due(conn, now - grace, limit=BATCH)

    def job_of(delivery: Due) -> queue.Job:
        variant = queue.recovery(delivery.next_attempt_at)
        return queue.deliver(delivery.id, delivery.attempts, variant=variant)

    return await _requeue(context, late, events.push_back, job_of, "delivery", now + grace)


async def _recover(context: WorkerContext, task: Overdue) -> int:
    config = await context.config.get()
    if task.status != TaskStatus.STORING and expired(task, config):
        failed = await finish(
            context, settlement.fail, task.id, *timeout_failure(config), expected=[task.status]
        )
        if failed:
            RECONCILER_CLAIMS.labels("expired").inc()
        return int(failed)
    async with context.engine.begin() as conn:
        claimed = await tasks.claim_overdue(conn, task, utcnow() + _grace(context))
    if not claimed:
        return 0  # another replica took it, or the task moved on meanwhile
    RECONCILER_CLAIMS.labels(str(task.status)).inc()
    variant = queue.recovery(task.next_attempt_at)
    if task.status == TaskStatus.SUBMITTING:
        await ambiguous(context, task.id, "The worker stopped while submitting; outcome unknown.")
        return 1
    await queue.enqueue_after_commit(context.redis, _resumption(task, variant))
    return 1


def _resumption(task: Overdue, variant: str) -> queue.Job:
    """The job that carries a queued, running or storing task on from where it is."""
    match task.status:
        case TaskStatus.QUEUED:
            return queue.submit(task.id, variant=variant)
        case TaskStatus.RUNNING:
            return queue.poll(task.id, task.polls, variant=variant)
        case _:
            return queue.store(task.id, variant=variant)
