"""reconcile: Redis is a cache of work, PostgreSQL the copy that matters (DESIGN §5).

Every few seconds, in every worker replica, tasks whose next step is overdue are
enqueued again under deterministic job ids; duplicates are harmless because every job
re-checks the task's state before acting.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from schemas import jobs
from schemas.status import TaskStatus
from schemas.tables import utcnow
from worker import task_queries
from worker.context import wctx
from worker.jobs.common import enqueue_poll, enqueue_store, log
from worker.jobs.submit import ambiguous


async def reconcile(ctx: dict[str, Any]) -> int:
    context = wctx(ctx)
    now = utcnow()
    async with context.engine.connect() as conn:
        rows = await task_queries.overdue(conn, now, limit=500)
    for row in rows:
        status = TaskStatus(row.status)
        if status == TaskStatus.QUEUED:
            await context.redis.enqueue_job(
                jobs.SUBMIT, row.id, _job_id=f"{jobs.submit_job_id(row.id)}:r{int(now.timestamp())}"
            )
        elif status == TaskStatus.SUBMITTING:
            await ambiguous(
                context, row.id, "The worker stopped while submitting; outcome unknown."
            )
        elif status == TaskStatus.RUNNING:
            await enqueue_poll(context, row.id, row.polls, 0)
        elif status == TaskStatus.STORING:
            await enqueue_store(context, row.id)
    if rows:
        log.info(
            "reconciled",
            tasks=len(rows),
            grace=timedelta(seconds=context.settings.reconcile_grace_seconds).total_seconds(),
        )
    return len(rows)
