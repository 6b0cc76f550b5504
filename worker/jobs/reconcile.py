"""reconcile: Redis is a cache of work, the database the copy that matters (DESIGN §5).

Every few seconds, in every worker replica, tasks whose next step is overdue are
claimed (a conditional bump of ``next_attempt_at``, so one replica wins each task) and
enqueued again. The job id is new for each claim: a killed worker's job keeps its
ARQ in-progress key until that expires, and reusing its id would wait for it.
Duplicates are harmless because every job re-checks the task's state before acting.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core import settlement
from schemas import jobs
from schemas.status import TaskStatus
from schemas.tables import utcnow
from worker import delivery_queries, task_queries
from worker.context import WorkerContext, wctx
from worker.jobs.common import expired, finish, log, timeout_message
from worker.jobs.submit import ambiguous

BATCH = 500


async def reconcile(ctx: dict[str, Any]) -> int:
    context = wctx(ctx)
    now = utcnow()
    async with context.engine.connect() as conn:
        rows = await task_queries.overdue(conn, now, limit=BATCH)
    recovered = 0
    for row in rows:
        recovered += await _recover(context, row)
    redelivered = await _redeliver(context)
    if recovered or redelivered:
        log.info("reconciled", tasks=recovered, deliveries=redelivered)
    return recovered + redelivered


async def _redeliver(context: WorkerContext) -> int:
    """Deliveries whose job was lost (killed worker, flushed Redis, failed enqueue)."""
    grace = timedelta(seconds=context.settings.reconcile_grace_seconds)
    now = utcnow()
    async with context.engine.connect() as conn:
        rows = await delivery_queries.due(conn, now - grace, limit=BATCH)
    count = 0
    for row in rows:
        async with context.engine.begin() as conn:
            if not await delivery_queries.push_back(conn, row, now + grace):
                continue
        suffix = f"r{int(row.next_attempt_at.timestamp() * 1000)}"
        job_id = f"{jobs.deliver_job_id(row.id, row.attempts)}:{suffix}"
        await context.redis.enqueue_job(jobs.DELIVER, row.id, _job_id=job_id)
        count += 1
    return count


async def _recover(context: WorkerContext, row: Any) -> int:
    config = await context.config.get()
    status = TaskStatus(row.status)
    if status != TaskStatus.STORING and expired(row, config):
        return int(
            await finish(
                context, settlement.fail, row.id, *timeout_message(config), expected=[status]
            )
        )
    grace = timedelta(seconds=context.settings.reconcile_grace_seconds)
    async with context.engine.begin() as conn:
        claimed = await task_queries.claim_overdue(conn, row, utcnow() + grace)
    if not claimed:
        return 0  # another replica took it, or the task moved on meanwhile
    suffix = f"r{int(row.next_attempt_at.timestamp() * 1000)}"
    if status == TaskStatus.QUEUED:
        await context.redis.enqueue_job(
            jobs.SUBMIT, row.id, _job_id=f"{jobs.submit_job_id(row.id)}:{suffix}"
        )
    elif status == TaskStatus.SUBMITTING:
        await ambiguous(context, row.id, "The worker stopped while submitting; outcome unknown.")
    elif status == TaskStatus.RUNNING:
        await context.redis.enqueue_job(
            jobs.POLL, row.id, row.polls, _job_id=f"{jobs.poll_job_id(row.id, row.polls)}:{suffix}"
        )
    elif status == TaskStatus.STORING:
        await context.redis.enqueue_job(
            jobs.STORE, row.id, _job_id=f"{jobs.store_job_id(row.id)}:{suffix}"
        )
    return 1
