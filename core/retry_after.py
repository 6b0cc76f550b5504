"""The one reading of a ``Retry-After`` header (RFC 9110 §10.2.3), for every HTTP client of
the service: the upstream clients and the webhook sender.

The header is either ``delay-seconds`` (ASCII digits) or an ``HTTP-date``. What to do with
the value -- cap it, ignore zero -- is the caller's policy; this module only reads it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A bound that keeps the value a sane float; callers cap far lower anyway.
MAX_SECONDS = float(2**31)
# ASCII digits only: str.isdigit() also accepts "²" or a full-width digit, which int()
# may refuse or read as something else. A decimal fraction is tolerated (RFC 9110 has none).
_DELAY = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds to wait from ``now`` (aware; default: the current time).

    ``"120"`` → 120.0; ``"1.5"`` → 1.5; an HTTP-date → the seconds until it (0.0 when it has
    passed); values above ``MAX_SECONDS`` are clamped to it. A missing, empty, negative or
    unreadable value gives None, which callers read as "no hint".
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    delay = _DELAY.fullmatch(text)
    if delay is not None:
        return min(float(text), MAX_SECONDS)
    return _seconds_until_date(text, now or datetime.now(UTC))


def _seconds_until_date(text: str, now: datetime) -> float | None:
    if not text.isascii() or not any(ch.isalpha() for ch in text):
        return None  # a bare "-3" or "1e9" is not a date, whatever a lenient parser makes of it
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # asctime form or "-0000": both mean UTC
        when = when.replace(tzinfo=UTC)
    try:
        seconds = (when - now).total_seconds()
    except OverflowError:
        return None
    return min(max(0.0, seconds), MAX_SECONDS)
