"""Scripted outcomes: ``[sim:...]`` directives inside a prompt.

A prompt may carry any number of directives matching
``\\[sim:([a-z0-9_]+)(?:=([^\\]]*))?\\]``; the rest of the prompt is ignored. When a
directive repeats, the last one wins. An unknown directive or a bad value makes the submit
answer 400 ``invalid_request``, so a typo in a test is loud instead of silently running
the default script. The same directives, set as *quirks* (``--quirks``,
``GOOGLE_VIDEO_SIM_QUIRKS`` or ``POST /_sim/config``), apply to every task whose prompt
does not say otherwise. Without any, the simulator speaks the documented protocol.

Task outcome
    ``[sim:fail=REASON]``
        The task ends in ``FAILURE`` with ``fail_reason`` = REASON and no ``video_url``.
    ``[sim:duration=SECONDS]``
        Exact submit-to-finish duration (a float), still multiplied by the time scale.
    ``[sim:safety]``
        The task ends in ``SUCCESS`` without a URL; its ``data`` is Google's operation with
        ``raiMediaFilteredCount: 1`` and the reason (corpus p07). The file URL answers 404.
    ``[sim:openai_failure]``
        The task fails, and its failed queries answer HTTP 200 with an OpenAI video object
        ``{"status": "failed", "error": {"message", "code"}}`` and no envelope (p15). The
        reason is ``[sim:fail=...]``'s, else the Veo safety text with code ``rai_filtered``.

Where the URL is and how the answer looks
    ``[sim:url_at=video_url|fail_reason|result_url|output|outputs]``
        Where a ``SUCCESS`` carries the video URL: ``data.data.video_url`` (the documented
        default); ``data.fail_reason`` with ``data.data = {id, status}`` (older new-api, p08);
        ``data.result_url`` with ``data`` a new-api TaskDto in every answer (newer new-api,
        p09); ``data.data.output`` or ``data.data.outputs[0]`` (v2-style inner objects).
    ``[sim:sparse]``
        ``data.data`` is ``null`` while the task is NOT_START or SUBMITTED (p02, p03, p06)
        and carries ``video_url: ""`` until there is a URL (p04, p05).
    ``[sim:lowercase]``
        Statuses use the lower-case variant: ``pending``, ``processing``, ``success``,
        ``failed``.
    ``[sim:queued_word=W]``, ``[sim:running_word=W]``,
    ``[sim:success_word=W]``, ``[sim:failure_word=W]``
        The outer status word for NOT_START and SUBMITTED, for IN_PROGRESS, for SUCCESS and
        for FAILURE (letters, digits, ``_`` and ``-``, any case: ``QUEUED``, ``UNKNOWN``,
        ``running``, ``succeeded``, ``fail``, ``expired``, ``Cancelled`` ...). They win
        over ``[sim:lowercase]``.
    ``[sim:unknown_status=N]``
        The first N queries answered with HTTP 200 report the unknown status ``WEIRD_STATE``.
    ``[sim:nourl=N]``
        Once finished, the first N queries answered with HTTP 200 report ``SUCCESS`` without
        a URL.
    ``[sim:null_data=N]``
        The first N queries answered with HTTP 200 are ``{"code": "success", "data": null}``
        (p22).

Query errors, in this order per task (``task_not_exist`` first, then the 401 window, then
the others in the order listed; each N counts the queries that reached it)
    ``[sim:task_not_exist=N]``
        The first N queries answer 400 ``task_not_exist`` (replication lag right after
        submit, p16).
    ``[sim:poll401=N]``, ``[sim:poll401_after=K]``, ``[sim:poll401_after_s=SECONDS]``
        From the query after the K-th (default 0) and from SECONDS (times the time scale,
        default 0) after the submit on, N queries (without ``poll401``: every one) answer
        401 with the new-api "token quota exhausted" error (p19). Any one of the three
        turns the window on.
    ``[sim:poll429=N]``
        N queries answer HTTP 429 ``upstream_overloaded`` with ``Retry-After: 1``.
    ``[sim:poll429_empty=N]``
        N queries answer HTTP 429 with an empty body and no ``Retry-After`` (p18).
    ``[sim:poll500=N]``
        N queries answer HTTP 500 ``get_task_failed`` (p17).
    ``[sim:poll502=N]``, ``[sim:poll502_empty=N]``
        N queries answer a proxy's 502: nginx's HTML page (p20) or an empty body (p21).
    ``[sim:poll404=N]``
        N queries answer nginx's HTML 404 page, as when the operator's base URL has a wrong
        path or a proxy in front has no route for it; the task keeps running meanwhile.
    ``[sim:retry_after=SECONDS]``
        Every 429 and 503 of this task, submit or query, carries ``Retry-After: SECONDS``
        (an integer; without it only ``upstream_overloaded`` carries ``Retry-After: 1``).

Submit
    ``[sim:submit=OUTCOME]``
        ``400`` ``invalid_request``; ``401`` bad key, OpenAI-style (s10); ``403``
        ``quota_not_enough`` (s06); ``429`` ``upstream_overloaded`` with ``Retry-After: 1``;
        ``429_busy`` ``fail_to_fetch_task`` (s07); ``429_limit`` OpenAI-style rate limit
        (s09); ``429_empty`` empty, no ``Retry-After`` (s08); ``500`` ``do_request_failed``;
        ``503`` no channel for the model (s11); ``521``/``522``/``523`` a CDN's HTML page: no
        task is created for any of these. ``502``/``504`` (nginx HTML, s13),
        ``502_empty`` (s15) and ``520``/``524`` (a CDN's HTML page) DO create the task,
        which runs: only the answer is a proxy's. ``timeout`` creates the task and holds the
        answer back until the client hangs up (at most ``GOOGLE_VIDEO_SIM_SUBMIT_TIMEOUT_DELAY``
        seconds, default 600): the ambiguous submit.
    ``[sim:submit_times=N]``
        ``[sim:submit=...]`` applies to the first N submits of this exact prompt only.
    ``[sim:submit_then=<outcome>]``
        With ``submit_times``: what the later submits of this exact prompt answer (an
        outcome as for ``submit``), e.g. a 502 and then 429s.
    ``[sim:submit500=N]``
        The first N submits of this exact prompt answer HTTP 500 ``do_request_failed``; later
        ones create the task. ``[sim:submit500_once]`` is ``[sim:submit500=1]``.
    ``[sim:submit_timeout=N]``
        Like ``[sim:submit=timeout]`` for the first N submits of this exact prompt only;
        later submits answer at once (each submit creates a task either way).
    ``[sim:submit_shape=task_id|id|openai]``
        The success answer is ``{"task_id"}`` (v2, s02), ``{"id", "status",
        "status_update_time"}`` (s03) or an OpenAI video object (s04) instead of the
        envelope; the ids are then ``model:...`` or ``task_...`` as those gateways make them.

Gemini API only (``simulator.gemini_routes``; the gateway side ignores it)
    ``[sim:inline]``
        The finished operation carries the video inline (``encodedVideo``) instead of a URI.

File
    ``[sim:download404]``
        The task's file URL answers HTTP 404.
    ``[sim:truncate=N]``
        The first N downloads of the task serve the MP4 cut in half: it still opens with
        ``ftyp`` but cannot be played (what a dropped CDN transfer leaves).
    ``[sim:size=BYTES]``
        The served MP4 is padded to exactly BYTES with a trailing ``free`` box (overrides
        ``GOOGLE_VIDEO_SIM_VIDEO_BYTES``; a size below the real video plus 8 is ignored),
        at most ``GOOGLE_VIDEO_SIM_MAX_VIDEO_BYTES`` (default 50 MiB): a larger size is
        clamped to it, so a prompt cannot make a worker store more.
    ``[sim:length=absent|gzip]``
        How the file's length is told. ``absent``: no ``Content-Length``, the body is sent
        with chunked transfer encoding (as from a CDN streaming through). ``gzip``: the body
        is gzip-encoded although the client asked for ``identity``, so ``Content-Length``
        counts the compressed bytes, a fraction of the file the client decodes (a padded
        file's zeros shrink a thousandfold). The default declares the exact length.
"""

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

DIRECTIVE_RE = re.compile(r"\[sim:([a-z0-9_]+)(?:=([^\]]*))?\]")
_WORD_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")

E = TypeVar("E", bound=StrEnum)


class SubmitOutcome(StrEnum):
    BAD_REQUEST = "400"
    BAD_KEY = "401"
    QUOTA = "403"
    OVERLOADED = "429"
    BUSY = "429_busy"
    RATE_LIMITED = "429_limit"
    EMPTY_429 = "429_empty"
    FAILED = "500"
    PROXY_502 = "502"
    PROXY_502_EMPTY = "502_empty"
    NO_CHANNEL = "503"
    PROXY_504 = "504"
    CDN_520 = "520"
    CDN_521 = "521"
    CDN_522 = "522"
    CDN_523 = "523"
    CDN_524 = "524"
    TIMEOUT = "timeout"

    @property
    def creates_task(self) -> bool:
        """The request reached the gateway, which created the task, whatever the answer."""
        return self in _CREATING


_CREATING = frozenset(
    {
        SubmitOutcome.PROXY_502,
        SubmitOutcome.PROXY_502_EMPTY,
        SubmitOutcome.PROXY_504,
        SubmitOutcome.CDN_520,
        SubmitOutcome.CDN_524,
        SubmitOutcome.TIMEOUT,
    }
)


class UrlPlace(StrEnum):
    VIDEO_URL = "video_url"
    FAIL_REASON = "fail_reason"
    RESULT_URL = "result_url"
    OUTPUT = "output"
    OUTPUTS = "outputs"


class SubmitShape(StrEnum):
    ENVELOPE = "envelope"
    TASK_ID = "task_id"
    ID = "id"
    OPENAI = "openai"


class Length(StrEnum):
    ABSENT = "absent"
    GZIP = "gzip"


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
    truncate: int = 0
    size: int | None = None
    length: Length | None = None
    lowercase: bool = False
    safety: bool = False
    openai_failure: bool = False
    url_at: UrlPlace = UrlPlace.VIDEO_URL
    sparse: bool = False
    queued_word: str | None = None
    running_word: str | None = None
    success_word: str | None = None
    failure_word: str | None = None
    null_data: int = 0
    task_not_exist: int = 0
    poll401: int | None = None
    poll401_after: int | None = None
    poll401_after_s: float | None = None
    poll429_empty: int = 0
    poll502: int = 0
    poll502_empty: int = 0
    poll404: int = 0
    retry_after: int | None = None
    submit_times: int | None = None
    submit_then: SubmitOutcome | None = None
    submit_shape: SubmitShape = SubmitShape.ENVELOPE
    inline: bool = False

    @property
    def fails(self) -> bool:
        """The task ends in FAILURE (a reason is scripted, or an OpenAI-shaped failure)."""
        return self.fail is not None or self.openai_failure

    @property
    def auth_window(self) -> bool:
        """Some queries of the task answer 401 (``poll401*``)."""
        return (
            self.poll401 is not None
            or self.poll401_after is not None
            or self.poll401_after_s is not None
        )


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
        submit=_choice(raw, "submit", SubmitOutcome),
        submit500=_count(raw, "submit500") or 0,
        submit_timeout=_count(raw, "submit_timeout") or 0,
        download404=_flag(raw, "download404"),
        truncate=_count(raw, "truncate") or 0,
        size=_count(raw, "size"),
        length=_choice(raw, "length", Length),
        lowercase=_flag(raw, "lowercase"),
        safety=_flag(raw, "safety"),
        openai_failure=_flag(raw, "openai_failure"),
        url_at=_choice(raw, "url_at", UrlPlace) or UrlPlace.VIDEO_URL,
        sparse=_flag(raw, "sparse"),
        queued_word=_word(raw, "queued_word"),
        running_word=_word(raw, "running_word"),
        success_word=_word(raw, "success_word"),
        failure_word=_word(raw, "failure_word"),
        null_data=_count(raw, "null_data") or 0,
        task_not_exist=_count(raw, "task_not_exist") or 0,
        poll401=_count(raw, "poll401"),
        poll401_after=_count(raw, "poll401_after"),
        poll401_after_s=_seconds(raw, "poll401_after_s"),
        poll429_empty=_count(raw, "poll429_empty") or 0,
        poll502=_count(raw, "poll502") or 0,
        poll502_empty=_count(raw, "poll502_empty") or 0,
        poll404=_count(raw, "poll404") or 0,
        retry_after=_count(raw, "retry_after"),
        submit_times=_count(raw, "submit_times"),
        submit_then=_choice(raw, "submit_then", SubmitOutcome),
        submit_shape=_choice(raw, "submit_shape", SubmitShape) or SubmitShape.ENVELOPE,
        inline=_flag(raw, "inline"),
    )


def strip_directives(prompt: str) -> str:
    """``prompt`` without its ``[sim:...]`` directives and with runs of spaces collapsed."""
    return " ".join(DIRECTIVE_RE.sub(" ", prompt).split())


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
        "truncate",
        "size",
        "length",
        "lowercase",
        "safety",
        "openai_failure",
        "url_at",
        "sparse",
        "queued_word",
        "running_word",
        "success_word",
        "failure_word",
        "null_data",
        "task_not_exist",
        "poll401",
        "poll401_after",
        "poll401_after_s",
        "poll429_empty",
        "poll502",
        "poll502_empty",
        "poll404",
        "retry_after",
        "submit_times",
        "submit_then",
        "submit_shape",
        "inline",
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


def _word(raw: dict[str, str | None], name: str) -> str | None:
    text = _text(raw, name)
    if text is not None and not _WORD_RE.fullmatch(text):
        raise DirectiveError(f"[sim:{name}={text}] needs a word of letters, digits, _ or -")
    return text


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


def _choice(raw: dict[str, str | None], name: str, kind: type[E]) -> E | None:
    text = _text(raw, name)
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        allowed = "|".join(member.value for member in kind)
        raise DirectiveError(f"[sim:{name}={text}] must be one of {allowed}") from None
