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
from worker.upstream.answers import Candidate, as_url, safety_filtered, video_candidates
from worker.upstream.base import (
    ImageInput,
    PollResult,
    RemoteImage,
    SubmitRequest,
    SubmitResult,
    UpstreamState,
)
from worker.upstream.errors import AmbiguousSubmitError, Body
from worker.upstream.gateway.errors import code_and_message, error_from_answer
from worker.upstream.outcomes import Operation, error_from_malformed

_FAMILIES: dict[UpstreamState, tuple[str, ...]] = {
    UpstreamState.PENDING: (
        "not_start", "not_started", "submitted", "queued", "queueing", "in_queue", "pending",
        "waiting", "created", "scheduled", "accepted", "new", "init", "initializing",
        "enqueued", "queuing",
    ),
    UpstreamState.RUNNING: (
        "in_progress", "processing", "running", "started", "starting", "generating",
        "rendering", "working", "active", "progressing", "uploading", "retrying", "retry",
        "inprogress",
    ),
    UpstreamState.SUCCEEDED: (
        "success", "succeeded", "succeed", "successful", "completed", "complete", "done",
        "finished", "finish", "ok", "ready",
    ),
    UpstreamState.FAILED: (
        "failure", "failed", "fail", "error", "errored", "expired", "cancelled", "canceled",
        "cancel", "rejected", "timeout", "timed_out", "aborted", "blocked", "terminated",
        "filtered", "moderated", "censored", "refused", "denied", "killed", "unsafe",
    ),
}  # fmt: skip
_STATES = {word: state for state, words in _FAMILIES.items() for word in words}
# Chinese status words, by the characters that carry the meaning (checked in this order:
# "生成失败" is a failure, "已完成" a success, "排队中" pending, "处理中" running).
_CHINESE: tuple[tuple[tuple[str, ...], UpstreamState], ...] = (
    (("失败", "错误", "取消", "超时", "拒绝", "违规", "过期"), UpstreamState.FAILED),
    (("成功", "完成"), UpstreamState.SUCCEEDED),
    (("排队", "等待", "提交", "待处理", "未开始"), UpstreamState.PENDING),
    (("处理中", "生成中", "进行中", "运行中", "执行中", "渲染中"), UpstreamState.RUNNING),
)
_CHINESE_NEGATIONS = ("未", "不", "非", "没")
_SEPARATORS = re.compile(r"[\s\-.:/]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Words that turn a family word around ("NOT_STARTED" is matched whole, above).
_NEGATIONS = frozenset({"not", "no", "non", "un", "without"})
# The provider's failure codes that name a safety filter (new-api's prompt_blocked and
# sensitive_words_detected, OpenAI's moderation_blocked, Google's rai_*, SAFETY and
# PUBLIC_ERROR_UNSAFE_GENERATION).
_SAFETY_WORDS = frozenset(
    {"rai", "safety", "moderation", "sensitive", "blocked", "nsfw", "unsafe", "moderated"}
)
# A provider's text saying a safety filter removed the video (words, not a bare "blocked").
_SAFETY_TEXT = re.compile(
    r"\b(safety|unsafe|moderation|moderated|nsfw|rai|content[ _]polic(y|ies)|responsible ai)"
    r"\b|敏感|违规|安全(策略|过滤|审核)|审核未通过|内容审核",
    re.IGNORECASE,
)
# Envelope codes meaning "request done". Not in the docs: numeric 0 / 1 / 200, "ok" and
# true, so a created task is never mistaken for a refusal (a refused submit is refunded,
# a created one is billed).
_SUCCESS_CODES = frozenset({"success", "succeed", "succeeded", "ok", "0", "1", "200", "true"})
# The longest task id we store (the upstream_task_id column); a longer one is absurd.
MAX_TASK_ID_CHARS = 1000
_ID_KEYS = ("task_id", "taskId", "taskID", "id")
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
    """Read a 2xx submit answer: `{"code": "success", "data": "<task id>"}` and variants.

    The id may also sit at `data.task_id` / `taskId` / `id`, `data.task.id` or the top
    level. An envelope whose code is neither a known success nor an error (no message, no
    ``error``) but that carries an id is ambiguous, never a refusal: a refused submit is
    refunded while the task may exist. An id longer than `MAX_TASK_ID_CHARS` or with
    control characters cannot be stored or polled: ambiguous, with a message saying so.
    """
    if not isinstance(body, dict):
        raise error_from_malformed("submit", status, body, "submit answer is not a JSON object")
    task_id = _submitted_id(body)
    if task_id is not None and not _is_success_code(body.get("code")) and not _is_error(body):
        raise AmbiguousSubmitError(
            "unrecognised_submit_code",
            f"the submit answer carries task id {task_id[:100]!r} with code "
            f"{body.get('code')!r}, read neither as success nor as an error",
            status=status,
            body=body,
        )
    _raise_for_error_code("submit", status, body)
    if task_id is None:
        raise error_from_malformed("submit", status, body, "submit answer carries no task id")
    if len(task_id) > MAX_TASK_ID_CHARS or any(ord(ch) < 32 or ch == "\x7f" for ch in task_id):
        raise AmbiguousSubmitError(
            "unusable_task_id",
            f"the gateway created task {task_id[:100]!r}… ({len(task_id)} characters) but its "
            f"id is longer than {MAX_TASK_ID_CHARS} characters or holds control characters: "
            "it cannot be stored or polled",
            status=status,
            body=body,
        )
    return SubmitResult(task_id=task_id, raw=body)


def _submitted_id(body: dict[str, Any]) -> str | None:
    data = body.get("data")
    candidates: list[object] = [data]
    if isinstance(data, dict):
        task = data.get("task")
        candidates += [data.get(key) for key in _ID_KEYS]
        if isinstance(task, dict):
            candidates += [task.get(key) for key in _ID_KEYS]
        else:
            candidates.append(task)
    candidates += [body.get(key) for key in _ID_KEYS]
    for candidate in candidates:
        task_id = _identifier(candidate)
        if task_id:
            return task_id
    return None


def parse_poll_answer(status: int, body: Body) -> PollResult:
    """Read a 2xx query answer.

    The task is the envelope's `data` when that is an object with a status of its own (an
    envelope's top-level `status` is the request's, not the task's), else the body itself
    (flat and OpenAI-shaped answers). Its status word decides the state (`map_status`); an
    unknown word with a URL under a key naming a video reads as finished. The video URL is
    the best of the known places and every other URL of the answer (`video_candidates`),
    all of them kept in `video_urls` for the caller to skip its own inputs or a URL whose
    download is not a video.
    """
    if not isinstance(body, dict):
        raise error_from_malformed("poll", status, body, "query answer is not a JSON object")
    if not _is_task_object(body):
        _raise_for_error_code("poll", status, body)
    envelope_data = body.get("data")
    task = body
    if isinstance(envelope_data, dict) and (
        "status" not in body or _has_status(envelope_data.get("status"))
    ):
        task = envelope_data
    inner = _dict(task.get("data"))
    raw_status = task.get("status")
    if not _has_status(raw_status):
        raw_status = inner.get("status")  # no outer status at all: the inner one is all we have
    state = map_status(raw_status)
    fail_code = _fail_code(task, inner)
    candidates: list[Candidate] = []
    if state in (UpstreamState.SUCCEEDED, UpstreamState.UNKNOWN):
        candidates = video_candidates(body, _known_places(body, task, inner))
    if state == UpstreamState.UNKNOWN:
        candidates = [c for c in candidates if c.video_key and c.tier <= 1]
        if candidates:
            state = UpstreamState.SUCCEEDED
    fail_reason = _fail_reason(task, inner, state)
    safety = False
    # Only an ended task's failure is read (PollResult.failure): the walk for the filter's
    # signs is spared the answers of a task still running, most polls.
    if state in (UpstreamState.SUCCEEDED, UpstreamState.FAILED):
        filtered, filter_reasons = safety_filtered(body)
        fail_reason = fail_reason or filter_reasons
        safety = filtered or _names_a_safety_filter(fail_code)
        if state == UpstreamState.SUCCEEDED and not candidates:
            # A success without a video that says why: the video will never come. (A
            # failure's text stays `upstream_failed`, verbatim; only its codes name a filter.)
            safety = safety or _says_a_safety_filter(fail_reason)
    return PollResult(
        state=state,
        raw_status=_status_text(raw_status),
        progress=parse_progress(task.get("progress")),
        video_url=candidates[0].url if candidates else None,
        fail_reason=fail_reason,
        submit_time=parse_time(task.get("submit_time")),
        start_time=parse_time(task.get("start_time")),
        finish_time=parse_time(task.get("finish_time")),
        raw=body,
        fail_code=fail_code,
        safety_filtered=safety,
        video_urls=tuple(c.url for c in candidates),
    )


def map_status(value: object) -> UpstreamState:
    """Gateway status -> state, by family and case-insensitively; unrecognised -> UNKNOWN.

    The whole word is matched first ("NOT_START", "in-progress", "Succeeded"); then its
    parts (split at separators and camelCase): all parts naming a family must agree, and
    none may negate it, so "TASK_STATUS_SUCCEEDED", "SUCCEEDED_WITH_WARNINGS",
    "FAILURE_RAI" and "cancelled_by_user" read as their family while "failed_retrying",
    "not_ready" or "no_error" stay unknown. Chinese words by their key characters
    ("成功", "失败", "排队中", "处理中"). Numbers are no family: unknown.
    """
    if not isinstance(value, str):
        return UpstreamState.UNKNOWN
    text = value.strip()
    word = _SEPARATORS.sub("_", _CAMEL.sub("_", text).casefold()).strip("_")
    found = _STATES.get(word) or _STATES.get(word.replace("_", ""))
    if found is not None:
        return found
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        return _chinese_status(text)
    parts = [part for part in word.split("_") if part]
    if len(parts) < 2 or _NEGATIONS.intersection(parts):
        return UpstreamState.UNKNOWN
    families = {_STATES[part] for part in parts if part in _STATES}
    return families.pop() if len(families) == 1 else UpstreamState.UNKNOWN


def _chinese_status(text: str) -> UpstreamState:
    for words, state in _CHINESE:
        for chinese in words:
            at = text.find(chinese)
            if at < 0:
                continue
            negated = at > 0 and text[at - 1] in _CHINESE_NEGATIONS
            if not negated or chinese == "未开始":
                return state
            return UpstreamState.UNKNOWN
    return UpstreamState.UNKNOWN


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
    return _has_status(body.get("status")) and _is_success_code(body.get("code"))


def _raise_for_error_code(op: Operation, status: int, body: dict[str, Any]) -> None:
    error = body.get("error")
    code = body.get("code")
    has_error = isinstance(error, dict) or (isinstance(error, str) and error)
    if not has_error and _is_success_code(code):
        return
    upstream_code, message = code_and_message(body)
    upstream_code = upstream_code or (str(code) if code is not None else "upstream_error")
    message = message or f"upstream answered code {upstream_code!r}"
    raise error_from_answer(op, status, upstream_code, message, body)


def _known_places(
    body: dict[str, Any], task: dict[str, Any], inner: dict[str, Any]
) -> list[tuple[str, object]]:
    """The documented places in the order gateways use them, as (key, value)."""
    return [
        ("video_url", inner.get("video_url")),
        ("result_url", task.get("result_url")),
        ("fail_reason", task.get("fail_reason")),  # older new-api: the URL here on success
        ("video_url", task.get("video_url")),
        ("output", inner.get("output")),
        ("outputs", inner.get("outputs")),
        ("result_url", inner.get("result_url")),
        ("output", task.get("output")),
        ("outputs", task.get("outputs")),
        ("video_url", body.get("video_url")),
        ("result_url", body.get("result_url")),
    ]


def _is_success_code(code: object) -> bool:
    return code is None or str(code).strip().casefold() in _SUCCESS_CODES


def _is_error(body: dict[str, Any]) -> bool:
    """Whether an envelope says the request failed (an error object, or a message)."""
    error = body.get("error")
    if isinstance(error, dict) or (isinstance(error, str) and error.strip()):
        return True
    if body.get("success") is False:
        return True
    message = body.get("message") or body.get("msg")
    return isinstance(message, str) and bool(message.strip())


def _has_status(value: object) -> bool:
    return (isinstance(value, str) and bool(value.strip())) or (
        isinstance(value, int | float) and not isinstance(value, bool)
    )


def _status_text(value: object) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None or isinstance(value, bool) else str(value)


def _says_a_safety_filter(text: str | None) -> bool:
    return bool(text) and _SAFETY_TEXT.search(text or "") is not None


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
