"""The aggregator gateway's wire format: build the submit body, read its answers.

Pure functions, no I/O. Tolerant by design (docs/upstreams.md): the documented
shape first, then the variants seen in the wild; an answer that cannot be read raises
through the gateway's error policy, never a KeyError.

- Status words are mapped by family, case-insensitively (`map_status`); an unknown word
  is `UNKNOWN` and the caller keeps polling.
- The video URL is looked for in the known places first (`data.data.video_url`,
  `data.result_url`, `fail_reason` on success, `data.video_url`, `data.data.output`,
  `data.data.outputs[0]`, the flat variants), then anywhere in the success answer
  (`worker.upstream.answers.find_video_url`).
- An OpenAI-shaped task object ``{"status": "failed", "error": {...}}`` is a task that
  failed, not a request that did.
- A success without a video but with Google's safety-filter signs is `safety_filtered`.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from core.images import encode_data_uri
from schemas.catalogue import ImageRole
from worker.upstream.answers import as_url, find_video_url, first_video_url, safety_filtered
from worker.upstream.base import (
    ImageInput,
    PollResult,
    RemoteImage,
    SubmitRequest,
    SubmitResult,
    UpstreamState,
)
from worker.upstream.errors import Body
from worker.upstream.gateway.errors import code_and_message, error_from_answer
from worker.upstream.outcomes import Operation, error_from_malformed

_FAMILIES: dict[UpstreamState, tuple[str, ...]] = {
    UpstreamState.PENDING: (
        "not_start", "not_started", "submitted", "queued", "queueing", "in_queue", "pending",
        "waiting", "created", "scheduled", "accepted", "new", "init", "initializing",
    ),
    UpstreamState.RUNNING: (
        "in_progress", "processing", "running", "started", "starting", "generating",
        "rendering", "working", "active", "progressing", "uploading",
    ),
    UpstreamState.SUCCEEDED: (
        "success", "succeeded", "succeed", "successful", "completed", "complete", "done",
        "finished", "finish", "ok", "ready",
    ),
    UpstreamState.FAILED: (
        "failure", "failed", "fail", "error", "errored", "expired", "cancelled", "canceled",
        "cancel", "rejected", "timeout", "timed_out", "aborted", "blocked", "terminated",
    ),
}  # fmt: skip
_STATES = {word: state for state, words in _FAMILIES.items() for word in words}
_SEPARATORS = re.compile(r"[\s\-.:/]+")
# Words that turn a family word around ("NOT_STARTED" is matched whole, above).
_NEGATIONS = frozenset({"not", "no", "non", "un"})
# The provider's failure codes that name a safety filter (new-api's prompt_blocked and
# sensitive_words_detected, OpenAI's moderation_blocked, Google's rai_* and SAFETY).
_SAFETY_WORDS = frozenset({"rai", "safety", "moderation", "sensitive", "blocked", "nsfw"})
# Not in the docs: a numeric 0 / 200 code reads as success, so a created task is never
# mistaken for a refusal (a refused submit is refunded, a created one is billed).
_SUCCESS_CODES = frozenset({"success", "0", "200"})
# Timestamps above this are milliseconds (1e11 s is the year 5138).
_MILLISECONDS_FROM = 1e11
# The gateway reads `images` by position: the first frame, then the last, then elements.
_IMAGE_ORDER = {ImageRole.FIRST_FRAME: 0, ImageRole.LAST_FRAME: 1, ImageRole.REFERENCE: 2}


def submit_payload(req: SubmitRequest) -> dict[str, Any]:
    """The JSON body of `POST /google/v1/models/veo/videos`."""
    payload: dict[str, Any] = {
        "prompt": req.prompt,
        "model": req.model,
        "enhance_prompt": req.enhance_prompt,
    }
    if req.images:
        ordered = sorted(req.images, key=lambda image: _IMAGE_ORDER[image.role])
        payload["images"] = [image_reference(image) for image in ordered]
    if req.aspect_ratio is not None:
        payload["aspect_ratio"] = req.aspect_ratio
    if req.enable_upsample is not None:
        payload["enable_upsample"] = req.enable_upsample
    if req.seed is not None and req.seed > 0:
        payload["seed"] = req.seed
    if req.notify_hook:
        payload["notify_hook"] = req.notify_hook
    return payload


def image_reference(image: ImageInput) -> str:
    """A URL passes on as given; bytes go inline as a ``data:<mime>;base64,`` URI."""
    if isinstance(image, RemoteImage):
        return image.url
    return encode_data_uri(image.mime, image.data)


def parse_submit_answer(status: int, body: Body) -> SubmitResult:
    """Read a 2xx submit answer: `{"code": "success", "data": "<task id>"}` and variants."""
    if not isinstance(body, dict):
        raise error_from_malformed("submit", status, body, "submit answer is not a JSON object")
    _raise_for_error_code("submit", status, body)
    data = body.get("data")
    candidates = [data]
    if isinstance(data, dict):
        candidates += [data.get("task_id"), data.get("id")]
    candidates += [body.get("task_id"), body.get("id")]
    for candidate in candidates:
        task_id = _identifier(candidate)
        if task_id:
            return SubmitResult(task_id=task_id, raw=body)
    raise error_from_malformed("submit", status, body, "submit answer carries no task id")


def parse_poll_answer(status: int, body: Body) -> PollResult:
    """Read a 2xx query answer; the outer `data.status` decides the state."""
    if not isinstance(body, dict):
        raise error_from_malformed("poll", status, body, "query answer is not a JSON object")
    if not _is_task_object(body):
        _raise_for_error_code("poll", status, body)
    envelope_data = body.get("data")
    # Enveloped answers keep the task under "data"; flat variants put it at the top.
    task = envelope_data if isinstance(envelope_data, dict) and "status" not in body else body
    inner = _dict(task.get("data"))
    raw_status = task.get("status")
    if not (isinstance(raw_status, str) and raw_status.strip()):
        raw_status = inner.get("status")  # no outer status at all: the inner one is all we have
    state = map_status(raw_status)
    filtered, filter_reasons = safety_filtered(body)
    fail_code = _fail_code(task, inner)
    video_url = _video_url(body, task, inner) if state == UpstreamState.SUCCEEDED else None
    fail_reason = _fail_reason(task, inner, state) or filter_reasons
    return PollResult(
        state=state,
        raw_status=raw_status if isinstance(raw_status, str) else "",
        progress=parse_progress(task.get("progress")),
        video_url=video_url,
        fail_reason=fail_reason,
        submit_time=parse_time(task.get("submit_time")),
        start_time=parse_time(task.get("start_time")),
        finish_time=parse_time(task.get("finish_time")),
        raw=body,
        fail_code=fail_code,
        safety_filtered=filtered or _names_a_safety_filter(fail_code),
    )


def map_status(value: object) -> UpstreamState:
    """Gateway status -> state, by family and case-insensitively; unrecognised -> UNKNOWN.

    The whole word is matched first ("NOT_START", "in-progress", "Succeeded"); then its
    last part, so "TASK_STATUS_SUCCEEDED" or "JOB_STATE_FAILED" read as what they end
    with, while "failed_retrying" or "not_ready" stay unknown.
    """
    if not isinstance(value, str):
        return UpstreamState.UNKNOWN
    word = _SEPARATORS.sub("_", value.strip().casefold()).strip("_")
    found = _STATES.get(word)
    if found is not None:
        return found
    parts = word.split("_")
    if len(parts) < 2 or _NEGATIONS.intersection(parts):
        return UpstreamState.UNKNOWN
    return _STATES.get(parts[-1], UpstreamState.UNKNOWN)


def parse_progress(value: object) -> int | None:
    """`"42%"`, `"42"`, `42`, `42.7` -> 42 (truncated, so 99.9 never reads as 100)."""
    number = _number(value.strip().removesuffix("%") if isinstance(value, str) else value)
    if number is None:
        return None
    return min(100, max(0, int(number)))


def parse_time(value: object) -> datetime | None:
    """Unix seconds (or milliseconds, or an ISO string) -> aware UTC; 0 / junk -> None."""
    if isinstance(value, str) and _number(value) is None:
        return _iso_time(value)
    number = _number(value)
    if number is None or number <= 0:
        return None
    if number > _MILLISECONDS_FROM:
        number /= 1000
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _is_task_object(body: dict[str, Any]) -> bool:
    """A task reported at the top level (flat and OpenAI-shaped answers): its ``error``
    is the task's failure, not the request's."""
    status, code = body.get("status"), body.get("code")
    has_status = isinstance(status, str) and bool(status.strip())
    return has_status and (code is None or str(code).lower() in _SUCCESS_CODES)


def _raise_for_error_code(op: Operation, status: int, body: dict[str, Any]) -> None:
    error = body.get("error")
    code = body.get("code")
    has_error = isinstance(error, dict) or (isinstance(error, str) and error)
    if not has_error and (code is None or str(code).lower() in _SUCCESS_CODES):
        return
    upstream_code, message = code_and_message(body)
    upstream_code = upstream_code or (str(code) if code is not None else "upstream_error")
    message = message or f"upstream answered code {upstream_code!r}"
    raise error_from_answer(op, status, upstream_code, message, body)


def _video_url(body: dict[str, Any], task: dict[str, Any], inner: dict[str, Any]) -> str | None:
    """The known places in the order gateways use them, then anywhere in the answer."""
    outputs = inner.get("outputs")
    known = first_video_url(
        inner.get("video_url"),
        task.get("result_url"),
        task.get("fail_reason"),  # older new-api stored the result URL here on success
        task.get("video_url"),
        inner.get("output"),
        outputs[0] if isinstance(outputs, list) and outputs else None,
        inner.get("result_url"),
        task.get("output"),
        task.get("outputs"),
        body.get("video_url"),
        body.get("result_url"),
    )
    return known or find_video_url(body)


def _fail_reason(task: dict[str, Any], inner: dict[str, Any], state: UpstreamState) -> str | None:
    candidates: list[object] = [
        task.get("fail_reason"),
        inner.get("fail_reason"),
        task.get("failure_reason"),
        _message(task.get("error")),
        _message(inner.get("error")),
        task.get("error_message"),
    ]
    if state == UpstreamState.FAILED:
        candidates.append(task.get("message"))  # flat variants put the reason there
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip() and as_url(candidate) is None:
            return candidate
    return None


def _fail_code(task: dict[str, Any], inner: dict[str, Any]) -> str | None:
    for error in (task.get("error"), inner.get("error")):
        if isinstance(error, dict):
            code = error.get("code") or error.get("status") or error.get("type")
            if isinstance(code, str) and code.strip():
                return code.strip()
    code = task.get("fail_code") or task.get("error_code")
    return code.strip() if isinstance(code, str) and code.strip() else None


def _names_a_safety_filter(code: str | None) -> bool:
    if not code:
        return False
    parts = set(_SEPARATORS.sub("_", code.casefold()).split("_"))
    return bool(parts & _SAFETY_WORDS) or "content_policy" in code.casefold()


def _message(error: object) -> object:
    return error.get("message") if isinstance(error, dict) else error


def _identifier(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _iso_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
