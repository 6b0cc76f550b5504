"""purge_video: remove a deleted video's objects, retried until the store lets it.

``DELETE /v1/videos/{id}`` hides the row and marks its storage ``deleting`` in one
transaction, then enqueues this job: the answer never waits for (or fails with) the store.
The job deletes every prefix of the task (``core.storage.keys.task_prefixes``) and marks the
storage ``deleted``; for a task that was not deleted but ended with a video its store could
not remove (``worker.jobs.store``), only the video prefix. A store that errors makes it
retry with backoff, each failure pushing the row's due time past the retry; a job lost with
Redis, or out of tries, is re-enqueued by the reconciler once that time passes. Deleting
objects twice is harmless.
"""

from __future__ import annotations

from typing import Any

import structlog
from arq import Retry

from core.repo import tasks
from core.storage import StorageError
from core.storage.keys import task_prefixes, video_prefix
from worker.context import wctx
from worker.jobs.pacing import due_after, pacing
from worker.schedule import backoff

log = structlog.get_logger(__name__)

# With the default 2 s base: 2, 4, 8, … capped at 120 s, about 6 minutes of tries per
# enqueue; then the reconciler enqueues it again.
MAX_TRIES = 8


async def purge_video(ctx: dict[str, Any], task_id: str) -> str:
    context = wctx(ctx)
    async with context.engine.connect() as conn:
        whole = await tasks.purge_scope(conn, task_id)
    if whole is None:
        return "skipped"
    prefixes = task_prefixes(task_id) if whole else (video_prefix(task_id),)
    try:
        removed = [await context.storage.delete_prefix(p) for p in prefixes]
    except StorageError as exc:
        attempt = int(ctx.get("job_try", 1))
        delay = backoff(pacing(context), attempt)
        async with context.engine.begin() as conn:
            await tasks.defer_purge(conn, task_id, due_after(context, delay))
        log.warning(
            "purge_retry", task_id=task_id, attempt=attempt, delay=round(delay, 2), error=str(exc)
        )
        raise Retry(defer=delay) from exc
    async with context.engine.begin() as conn:
        await tasks.mark_purged(conn, task_id)
    log.info("video_purged", task_id=task_id, objects=sum(removed))
    return "purged"
