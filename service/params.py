"""Query parameters: one parser for integers, limits and cursors, so every list endpoint
answers the same problem for the same mistake."""

from __future__ import annotations

import re

from starlette.datastructures import QueryParams

from schemas.problems import Code
from service.errors import ProblemError

# ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
_DIGITS = re.compile(r"[0-9]{1,18}")

MAX_LIMIT = 100


def ascii_int(raw: str) -> int | None:
    """``raw`` as a non-negative integer if it is 1-18 ASCII digits, else None."""
    return int(raw) if _DIGITS.fullmatch(raw) else None


def limit(params: QueryParams, *, default: int = 20, high: int = MAX_LIMIT) -> int:
    """``?limit=``: an integer from 1 to ``high``; a 400 problem otherwise."""
    raw = params.get("limit")
    if raw is None:
        return default
    value = ascii_int(raw)
    if value is None or not 1 <= value <= high:
        raise ProblemError(Code.VALIDATION_ERROR, f"limit must be an integer from 1 to {high}.")
    return value


def id_cursor(params: QueryParams, name: str, prefix: str) -> str | None:
    """A cursor that is an id with ``prefix`` (``video_…``, ``evt_…``); a 400 otherwise."""
    raw = params.get(name)
    if raw is not None and (not raw.startswith(prefix) or len(raw) > 64):
        raise ProblemError(Code.INVALID_CURSOR, f"{name} must be an id from a previous page.")
    return raw


def int_cursor(params: QueryParams, name: str) -> int | None:
    """A cursor that is a numeric id (ledger entries); a 400 otherwise."""
    raw = params.get(name)
    if raw is None:
        return None
    value = ascii_int(raw)
    if value is None:
        raise ProblemError(Code.INVALID_CURSOR, f"{name} must be an entry id.")
    return value
