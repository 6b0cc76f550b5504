"""Time as the whole service sees it: timezone-aware UTC, and Unix seconds on the wire."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def unix(value: datetime | None) -> int | None:
    """Whole Unix seconds of ``value`` (None stays None), as the OpenAI-style API shows times."""
    return int(value.timestamp()) if value is not None else None
