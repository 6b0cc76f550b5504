"""store_task: stream the upstream video into storage, check it, complete and capture.

"Check it" is twice: the stream must open as an MP4 (``ftyp``), and the stored object is
probed (``core.media``): a file that does not parse, is truncated or has no video frames
is downloaded again, up to ``download_max_tries``, then fails ``invalid_video`` with the
hold released. A completed video carries its measured facts and its thumbnail and
spritesheet, stored beside it.

A video larger than ``max_video_bytes`` fails ``video_too_large`` at once (the same URL
would serve the same file): refused before storing when the upstream declares its length,
else stopped the moment the count passes the cap, so memory and storage stay bounded even
when the length is absent or wrong; the partial upload is discarded by ``put_stream``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import structlog
from arq import Retry

from core import queue, settlement
from core.media import InvalidVideo, MediaFacts, inspect_and_derive
from core.metrics import STORE_BYTES, STORE_DURATION
from core.repo import tasks
from core.repo.tasks import StoreAttempt
from core.storage import StorageError, StoredObject, TransientStorageError
from core.storage.keys import video_key, video_prefix
from core.storage.streams import StreamTooLarge, capped, refuse_declared
from schemas.config import RuntimeConfig
from schemas.problems import FailureCode
from schemas.status import StorageStatus, TaskStatus
from worker.context import WorkerContext, wctx
from worker.jobs.finishing import finish
from worker.jobs.heartbeat import heartbeat
from worker.jobs.pacing import due_after, pacing
from worker.log_context import bind_request
from worker.schedule import backoff
from worker.upstream import UpstreamError
from worker.upstream.routing import kind_of

log = structlog.get_logger(__name__)


class NotAVideo(Exception):
    pass


async def checked_mp4(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Pass the stream through, refusing it unless it opens with an MP4 ``ftyp`` box."""
    head = b""
    async for chunk in chunks:
        if len(head) < 12:
            head += chunk[: 12 - len(head)]
            if len(head) >= 8 and head[4:8] != b"ftyp":
                raise NotAVideo(f"not an MP4 file (starts with {head[:8]!r})")
        yield chunk
    if len(head) < 8:
        raise NotAVideo("empty or truncated video")


async def store_task(ctx: dict[str, Any], task_id: str) -> str:
    context = wctx(ctx)
    async with context.engine.begin() as conn:
        task = await tasks.begin_store(conn, task_id)
    if task is None:
        return "skipped"
    bind_request(task.request_id)
    attempt = task.store_attempts
    # Counted in the database, so attempts cut short by a crash count too: a store
    # that keeps dying ends in download_failed instead of being recovered forever.
    if attempt > context.settings.download_max_tries:
        message = f"Gave up storing after {attempt - 1} interrupted attempts."
        return await _give_up(context, task_id, FailureCode.DOWNLOAD_FAILED, message)
    if task.upstream_video_url is None:  # storing always has one; never download None
        message = "The finished task has no video URL."
        return await _give_up(context, task_id, FailureCode.UPSTREAM_NO_VIDEO, message)
    config = await context.config.get()
    try:
        stored, media = await _copy(context, task_id, config, task)
    except StreamTooLarge as exc:
        return await _give_up(context, task_id, FailureCode.VIDEO_TOO_LARGE, str(exc))
    except (NotAVideo, InvalidVideo) as exc:
        return await _retry_or_give_up(context, task_id, attempt, exc, FailureCode.INVALID_VIDEO)
    except TransientStorageError as exc:
        return await _wait_for_storage(context, task_id, int(ctx.get("job_try", 1)), exc)
    except (UpstreamError, StorageError) as exc:
        return await _retry_or_give_up(context, task_id, attempt, exc, FailureCode.DOWNLOAD_FAILED)
    return await _complete(context, task_id, stored, media)


async def _copy(
    context: WorkerContext, task_id: str, config: RuntimeConfig, task: StoreAttempt
) -> tuple[StoredObject, MediaFacts]:
    """Stream the task's upstream video into storage, through the provider of the route
    it ran on, and probe it; timed and counted (``google_video_store_*``) whatever the
    outcome."""
    url, kind = task.upstream_video_url or "", kind_of(task.upstream_route)
    started = time.perf_counter()
    outcome = "error"
    try:
        async with heartbeat(context, task_id, TaskStatus.STORING):
            async with (
                context.upstreams.lease(config, config.model(task.model), kind) as upstream,
                upstream.download(url) as download,
            ):
                limit = context.settings.max_video_bytes
                refuse_declared(download.content_length, limit)
                chunks = checked_mp4(capped(download.chunks, limit))
                stored = await context.storage.put_stream(video_key(task_id), chunks, "video/mp4")
            media = await inspect_and_derive(context.storage, task_id)
        outcome = "ok"
        STORE_BYTES.inc(stored.size)
        return stored, media
    finally:
        STORE_DURATION.labels(outcome).observe(time.perf_counter() - started)


async def _complete(
    context: WorkerContext, task_id: str, stored: StoredObject, media: MediaFacts
) -> str:
    facts = media.video
    done = await finish(
        context,
        settlement.complete,
        task_id,
        video_key=stored.key,
        video_size=stored.size,
        video_sha256=stored.sha256,
        video_duration_ms=facts.duration_ms,
        video_width=facts.width,
        video_height=facts.height,
        video_fps=facts.fps,
        video_codec=facts.codec,
        video_has_audio=facts.has_audio,
        thumbnail_key=media.thumbnail.key,
        spritesheet_key=media.spritesheet.key,
        storage_status=StorageStatus.STORED,
    )
    if not done:
        # Either a duplicate run completed first (keep its objects: same keys) or the
        # task was cancelled meanwhile (keep nothing).
        async with context.engine.connect() as conn:
            task = await tasks.load(conn, task_id)
        if task is not None and task.status != TaskStatus.COMPLETED:
            await _delete_video(context, task_id)
        return "not completed here"
    log.info("task_completed", task_id=task_id, bytes=stored.size, duration_ms=facts.duration_ms)
    return "completed"


async def _wait_for_storage(
    context: WorkerContext, task_id: str, job_try: int, exc: TransientStorageError
) -> str:
    """Our store is failing (network, 5xx, throttling): try again later without counting
    it against the download's tries. The upstream was paid for this video; an outage of
    our own storage must not throw it away. Retried with backoff while the job has tries,
    then by the reconciler; a download that itself fails still counts."""
    async with context.engine.begin() as conn:
        await tasks.uncount_store_attempt(conn, task_id)
    delay = backoff(pacing(context), job_try)
    log.warning("store_storage_unavailable", task_id=task_id, delay=round(delay, 2), error=str(exc))
    raise Retry(defer=delay)


async def _retry_or_give_up(
    context: WorkerContext, task_id: str, attempt: int, exc: Exception, code: FailureCode
) -> str:
    """Download again later, or after ``download_max_tries`` attempts fail with ``code``."""
    message = getattr(exc, "message", None) or str(exc)
    if attempt >= context.settings.download_max_tries:
        what = "Download failed" if code == FailureCode.DOWNLOAD_FAILED else "Not a playable video"
        return await _give_up(context, task_id, code, f"{what} after {attempt} attempts: {message}")
    delay = backoff(pacing(context), attempt, getattr(exc, "retry_after", None))
    log.info("store_retry", task_id=task_id, attempt=attempt, delay=round(delay, 2), error=message)
    raise Retry(defer=delay)


async def _give_up(context: WorkerContext, task_id: str, code: FailureCode, message: str) -> str:
    ended = await finish(
        context, settlement.fail, task_id, code, message, expected=[TaskStatus.STORING]
    )
    if not ended:
        # Another run got there first; if it completed, its row references these objects.
        return "not failed here"
    await _delete_video(context, task_id)
    log.info("task_failed", task_id=task_id, code=str(code))
    return str(code)


async def _delete_video(context: WorkerContext, task_id: str) -> None:
    """The video and its variants (the input images stay: the task row shows them). A store
    that refuses leaves them to the purge job, retried until they are gone."""
    try:
        await context.storage.delete_prefix(video_prefix(task_id))
    except StorageError as exc:
        async with context.engine.begin() as conn:
            left = await tasks.leave_video_to_purge(conn, task_id, due_after(context, 0.0))
        if left:
            await queue.enqueue_after_commit(context.redis, queue.purge_video(task_id))
        log.warning("video_cleanup_deferred", task_id=task_id, error=str(exc), purge=left)
