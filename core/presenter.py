"""Rows as the API shows them: a task as the public video object (the OpenAI Videos API
shape plus extensions), an account with its ledger, an API key. Pure.

It lives in ``core`` rather than ``schemas`` because it reads the repositories' typed
rows; ``schemas`` holds only the contracts (the models it fills in). The command line's
database side prints the same objects as the API.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.repo.apikeys import KeyRecord
from core.repo.credits import Balance, Entry
from core.repo.tasks import Task
from schemas.api import ApiKeyOut, CreditEntryOut, CreditsOut, Video, VideoError
from schemas.clock import unix
from schemas.shapes import size_of
from schemas.status import Role, TaskStatus, public_status


def video_of(row: Task, *, download_url: str | None = None, expires_at: int | None = None) -> Video:
    """The video object of ``row``; ``download_url``/``expires_at`` (Unix seconds) only
    for a completed video whose stored object can be fetched.

    ``seconds`` and ``size`` are what the stored file measured once it was probed, and
    what was asked for (or the model's default) before that.
    """
    status = row.status
    snapshot = row.request_snapshot or {}
    size = snapshot.get("size") or _asked_size(row)
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


def _asked_size(row: Task) -> str:
    """The size of what was asked for: the aspect ratio and resolution the create chose,
    16:9 and 720p where it left them to the model."""
    try:
        return size_of(row.aspect_ratio or "16:9", row.resolution or "720p")
    except (ValueError, ZeroDivisionError):  # a row written before the kinds had rules
        return "1280x720"


def account_of(user: str, balance: Balance, entries: Sequence[Entry], *, limit: int) -> CreditsOut:
    """The account as ``GET /v1/credits/{user}`` shows it; ``entries`` newest first, up to
    ``limit + 1`` of them (one more than shown says ``has_more``)."""
    return CreditsOut(
        user=user,
        balance=balance.balance,
        held=balance.held,
        entries=[
            CreditEntryOut(
                id=e.id,
                kind=e.kind,
                amount=e.amount,
                balance_after=e.balance_after,
                held_after=e.held_after,
                task_id=e.task_id,
                reason=e.reason,
                at=int(e.at.timestamp()),
            )
            for e in entries[:limit]
        ],
        has_more=len(entries) > limit,
    )


def api_key_of(row: KeyRecord, key: str | None = None) -> ApiKeyOut:
    """The key as an admin sees it; ``key`` (the secret) only in the answer that creates it."""
    return ApiKeyOut(
        id=row.id,
        prefix=row.prefix,
        client=row.client_id,
        name=row.name,
        role="admin" if row.role == Role.ADMIN else "client",
        created_at=int(row.created_at.timestamp()),
        last_used_at=unix(row.last_used_at),
        revoked_at=unix(row.revoked_at),
        key=key,
    )
