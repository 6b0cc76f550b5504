"""Scripted outcomes: ``[sim:...]`` directives inside a prompt.

A prompt may carry any number of directives matching
``\\[sim:([a-z0-9_]+)(?:=([^\\]]*))?\\]``; the rest of the prompt is ignored. When a
directive repeats, the last one wins. An unknown directive or a bad value makes the submit
answer 400 ``invalid_request``, so a typo in a test is loud instead of silently running
the default script.

``[sim:fail=REASON]``
    The task ends in ``FAILURE`` with ``fail_reason`` = REASON and no ``video_url``.
``[sim:duration=SECONDS]``
    Exact submit-to-finish duration (a float), still multiplied by the time scale.
``[sim:poll429=N]``
    The first N queries of the task answer HTTP 429 ``upstream_overloaded`` with
    ``Retry-After: 1``.
``[sim:poll500=N]``
    The next N queries (after the ``poll429`` ones) answer HTTP 500 ``get_task_failed``.
``[sim:unknown_status=N]``
    The first N queries answered with HTTP 200 report the unknown status ``WEIRD_STATE``.
``[sim:nourl=N]``
    Once finished, the first N queries answered with HTTP 200 report ``SUCCESS`` without
    ``video_url``.
``[sim:submit=400|429|500]``
    The submit answers HTTP 400 ``invalid_request``, 429 ``upstream_overloaded`` (with
    ``Retry-After: 1``) or 500 ``do_request_failed``; no task is created.
``[sim:submit=timeout]``
    The task IS created and runs, but the answer is held back for
    ``GOOGLE_VIDEO_SIM_SUBMIT_TIMEOUT_DELAY`` seconds (default 30) so the client times
    out: the ambiguous submit.
``[sim:submit500=N]``
    The first N submits of this exact prompt answer HTTP 500 ``do_request_failed``; later
    ones create the task. ``[sim:submit500_once]`` is ``[sim:submit500=1]``.
``[sim:submit_timeout=N]``
    Like ``[sim:submit=timeout]`` for the first N submits of this exact prompt only; later
    submits answer at once (each submit creates a task either way).
``[sim:download404]``
    The task's file URL answers HTTP 404.
``[sim:size=BYTES]``
    The served MP4 is padded to exactly BYTES with a trailing ``free`` box (overrides
    ``GOOGLE_VIDEO_SIM_VIDEO_BYTES``; a size below the real video plus 8 is ignored).
``[sim:lowercase]``
    Statuses use the lower-case variant: ``pending``, ``processing``, ``success``,
    ``failed``.

Query counters are per task: ``poll429``/``poll500`` count every query of the task id,
``unknown_status``/``nourl`` count only the queries answered with HTTP 200.
"""

import math
import re
from dataclasses import dataclass
from enum import StrEnum

DIRECTIVE_RE = re.compile(r"\[sim:([a-z0-9_]+)(?:=([^\]]*))?\]")


class SubmitOutcome(StrEnum):
    BAD_REQUEST = "400"
    OVERLOADED = "429"
    FAILED = "500"
    TIMEOUT = "timeout"


class DirectiveError(ValueError):
    """A ``[sim:...]`` directive is unknown or carries a bad value."""


@dataclass(frozen=True, slots=True)
class Script:
    """What the simulator will do with one task, read from its prompt."""

    fail: str | None = None
    duration: float | None = None
    poll429: int = 0
    poll500: int = 0
    unknown_status: int = 0
    nourl: int = 0
    submit: SubmitOutcome | None = None
    submit500: int = 0
    submit_timeout: int = 0
    download404: bool = False
    size: int | None = None
    lowercase: bool = False


def parse_script(prompt: str) -> Script:
    """Read every ``[sim:...]`` directive of ``prompt``; when one repeats, the last wins."""
    raw: dict[str, str | None] = {}
    for match in DIRECTIVE_RE.finditer(prompt):
        name, value = match.group(1), match.group(2)
        if name not in _KNOWN:
            raise DirectiveError(f"unknown simulator directive [sim:{name}]")
        if name == "submit500_once":
            _no_value(name, value)
            name, value = "submit500", "1"
        raw[name] = value
    return Script(
        fail=_text(raw, "fail"),
        duration=_seconds(raw, "duration"),
        poll429=_count(raw, "poll429") or 0,
        poll500=_count(raw, "poll500") or 0,
        unknown_status=_count(raw, "unknown_status") or 0,
        nourl=_count(raw, "nourl") or 0,
        submit=_submit(raw),
        submit500=_count(raw, "submit500") or 0,
        submit_timeout=_count(raw, "submit_timeout") or 0,
        download404=_flag(raw, "download404"),
        size=_count(raw, "size"),
        lowercase=_flag(raw, "lowercase"),
    )


_KNOWN = frozenset(
    {
        "fail",
        "duration",
        "poll429",
        "poll500",
        "unknown_status",
        "nourl",
        "submit",
        "submit500",
        "submit500_once",
        "submit_timeout",
        "download404",
        "size",
        "lowercase",
    }
)


def _no_value(name: str, value: str | None) -> None:
    if value is not None:
        raise DirectiveError(f"[sim:{name}] takes no value")


def _flag(raw: dict[str, str | None], name: str) -> bool:
    if name not in raw:
        return False
    _no_value(name, raw[name])
    return True


def _text(raw: dict[str, str | None], name: str) -> str | None:
    if name not in raw:
        return None
    value = raw[name]
    if not value:
        raise DirectiveError(f"[sim:{name}] needs a value")
    return value


def _count(raw: dict[str, str | None], name: str) -> int | None:
    text = _text(raw, name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        raise DirectiveError(f"[sim:{name}={text}] needs a non-negative integer")
    return int(text)


def _seconds(raw: dict[str, str | None], name: str) -> float | None:
    text = _text(raw, name)
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise DirectiveError(f"[sim:{name}={text}] needs a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise DirectiveError(f"[sim:{name}={text}] needs a non-negative number of seconds")
    return seconds


def _submit(raw: dict[str, str | None]) -> SubmitOutcome | None:
    text = _text(raw, "submit")
    if text is None:
        return None
    try:
        return SubmitOutcome(text)
    except ValueError:
        allowed = "|".join(outcome.value for outcome in SubmitOutcome)
        raise DirectiveError(f"[sim:submit={text}] must be one of {allowed}") from None
