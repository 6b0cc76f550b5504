"""A task row (or anything with its attributes) as the public video object: the
OpenAI Videos shape plus extensions. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.api import SIZES, Video, VideoError
from schemas.status import TaskStatus, public_status

_SIZE_OF_RATIO = {ratio: size for size, ratio in reversed(SIZES.items())}


def _unix(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def video_of(row: Any, *, download_url: str | None = None, expires_at: int | None = None) -> Video:
    status = TaskStatus(row.status)
    snapshot = row.request_snapshot or {}
    size = snapshot.get("size") or _SIZE_OF_RATIO.get(row.aspect_ratio or "16:9", "1280x720")
    error = (
        VideoError(code=row.error_code, message=row.error_message or "") if row.error_code else None
    )
    return Video(
        id=row.id,
        model=row.model,
        status=public_status(status),
        progress=row.progress,
        created_at=int(row.created_at.timestamp()),
        completed_at=_unix(row.completed_at),
        expires_at=expires_at,
        prompt=row.prompt,
        seconds=snapshot.get("seconds") or "8",
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
    )
