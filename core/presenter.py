"""A task as the public video object: the OpenAI Videos API shape plus extensions. Pure.

It lives in ``core`` rather than ``schemas`` because it reads the repository's typed
``Task``; ``schemas`` holds only the contracts (the ``Video`` model it fills in).
"""

from __future__ import annotations

from core.repo.tasks import Task
from schemas.api import Video, VideoError
from schemas.catalogue import SIZES
from schemas.clock import unix
from schemas.status import TaskStatus, public_status

_SIZE_OF = {shape: size for size, shape in SIZES.items()}


def video_of(row: Task, *, download_url: str | None = None, expires_at: int | None = None) -> Video:
    """The video object of ``row``; ``download_url``/``expires_at`` (Unix seconds) only
    for a completed video whose stored object can be fetched.

    ``seconds`` and ``size`` are what the stored file measured once it was probed, and
    what was asked for (or the model's default) before that.
    """
    status = row.status
    snapshot = row.request_snapshot or {}
    shape = (row.aspect_ratio or "16:9", row.resolution or "720p")
    size = snapshot.get("size") or _SIZE_OF.get(shape, "1280x720")
    seconds = str(row.duration_seconds or snapshot.get("seconds") or 8)
    if row.video_width and row.video_height:
        size = f"{row.video_width}x{row.video_height}"
    if row.video_duration_ms:
        seconds = str(max(1, round(row.video_duration_ms / 1000)))
    error = (
        VideoError(code=row.error_code, message=row.error_message or "") if row.error_code else None
    )
    return Video(
        id=row.id,
        model=row.model,
        status=public_status(status),
        progress=row.progress,
        created_at=int(row.created_at.timestamp()),
        completed_at=unix(row.completed_at),
        expires_at=expires_at,
        prompt=row.prompt,
        seconds=seconds,
        size=size,
        error=error,
        user=row.user,
        task_type=row.task_type,
        images=list(row.images),
        enhance_prompt=row.enhance_prompt,
        price=row.price,
        metadata=dict(row.metadata),
        internal_status=status,
        cancelled=status == TaskStatus.CANCELLED,
        download_url=download_url,
        video_bytes=row.video_size,
        video_sha256=row.video_sha256,
        duration_ms=row.video_duration_ms,
        width=row.video_width,
        height=row.video_height,
        fps=row.video_fps,
        codec=row.video_codec,
        has_audio=row.video_has_audio,
    )
