"""The Gemini API's wire format for Veo: the ``predictLongRunning`` body and the
long-running operation it answers. Pure functions, no I/O (docs/upstreams.md, "Google's
Gemini API").

- Images are inline ``{"bytesBase64Encoded", "mimeType"}`` by role: the first frame is
  ``image``, the last ``lastFrame``, elements ``referenceImages[]`` with ``referenceType:
  "ASSET"``. Google takes no URL: the submit job fetched https inputs already.
- ``durationSeconds`` is a number; ``seed``, ``fps``, ``generateAudio``,
  ``compressionQuality`` and ``storageUri`` are never sent (the Developer API refuses them).
- The operation has no progress: running until ``done``; then an ``error``, samples
  (a URI, or the video inline as ``encodedVideo``), or none with Google's safety-filter
  signs (``raiMediaFilteredCount``).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from schemas.catalogue import ImageRole
from worker.upstream.answers import safety_filtered, video_candidates
from worker.upstream.base import (
    ImageInput,
    InlineImage,
    PollResult,
    SubmitRequest,
    SubmitResult,
    UpstreamState,
)
from worker.upstream.errors import AmbiguousSubmitError, Body, PermanentUpstreamError
from worker.upstream.outcomes import error_from_malformed

# What a video inline in the operation (``encodedVideo``) is read from: the operation's
# own URL with this fragment and the sample's index, fetched again by `download`.
INLINE_FRAGMENT = "encodedVideo="
MAX_OPERATION_NAME_CHARS = 1000
_INLINE_KEYS = ("encodedVideo", "bytesBase64Encoded")
_REFERENCE_TYPE = "ASSET"


def submit_payload(req: SubmitRequest) -> dict[str, Any]:
    """The JSON body of ``POST /v1beta/models/{model}:predictLongRunning``.

    Raises PermanentUpstreamError for an image Google cannot take (a URL: the submit job
    inlines every input of this provider first)."""
    instance: dict[str, Any] = {"prompt": req.prompt}
    references: list[dict[str, Any]] = []
    for image in req.images:
        inline = _inline(image)
        if image.role == ImageRole.FIRST_FRAME:
            instance["image"] = inline
        elif image.role == ImageRole.LAST_FRAME:
            instance["lastFrame"] = inline
        else:
            references.append({"image": inline, "referenceType": _REFERENCE_TYPE})
    if references:
        instance["referenceImages"] = references
    parameters: dict[str, Any] = {"sampleCount": 1}
    if req.aspect_ratio is not None:
        parameters["aspectRatio"] = req.aspect_ratio
    if req.resolution is not None:
        parameters["resolution"] = req.resolution
    if req.duration_seconds is not None:
        parameters["durationSeconds"] = req.duration_seconds
    if req.negative_prompt:
        parameters["negativePrompt"] = req.negative_prompt
    if req.person_generation is not None:
        parameters["personGeneration"] = req.person_generation
    return {"instances": [instance], "parameters": parameters}


def _inline(image: ImageInput) -> dict[str, str]:
    if not isinstance(image, InlineImage):
        raise PermanentUpstreamError(
            "image_not_inline", f"the Gemini API takes image bytes, not a URL ({image.role})"
        )
    return {"bytesBase64Encoded": base64.b64encode(image.data).decode(), "mimeType": image.mime}


def parse_submit_answer(status: int, body: Body) -> SubmitResult:
    """Read a 2xx submit answer ``{"name": "models/<model>/operations/<id>"}``.

    Without a usable name the operation may still exist (a paid job): ambiguous."""
    if not isinstance(body, dict):
        raise error_from_malformed("submit", status, body, "submit answer is not a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise error_from_malformed("submit", status, body, "submit answer carries no operation")
    name = name.strip()
    if not usable_name(name):
        raise AmbiguousSubmitError(
            "unusable_operation_name",
            f"the operation {name[:100]!r} cannot be stored or polled (longer than "
            f"{MAX_OPERATION_NAME_CHARS} characters, or not a relative resource name)",
            status=status,
            body=body,
        )
    return SubmitResult(task_id=name, raw=without_inline_videos(body))


def usable_name(name: str) -> bool:
    """An operation name we may put in a URL path: relative, no traversal, no query."""
    if len(name) > MAX_OPERATION_NAME_CHARS or name.startswith("/"):
        return False
    if any(ord(ch) < 33 or ch in "?#\\%" or ord(ch) == 0x7F for ch in name):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def parse_poll_answer(status: int, body: Body, operation_url: str) -> PollResult:
    """Read a 2xx operation.

    ``done`` false or absent: running (no progress: Google gives none). ``done`` with
    ``error``: failed, the message verbatim. ``done`` with samples: the first sample's
    ``video.uri`` (then any other video URL of the answer), or, for a video inline as
    ``encodedVideo``, `operation_url` with the `INLINE_FRAGMENT` for `download` to read.
    ``done`` without samples: success without a video -- a safety-filtered one when
    ``raiMediaFilteredCount`` > 0 or reasons are given, which the caller fails at once.
    """
    if not isinstance(body, dict):
        raise error_from_malformed("poll", status, body, "operation is not a JSON object")
    raw = without_inline_videos(body)
    if body.get("done") is not True:
        return _result(UpstreamState.RUNNING, "running", raw)
    finished = datetime.now(UTC)
    error = body.get("error")
    if isinstance(error, dict) or (isinstance(error, str) and error.strip()):
        code, message = _operation_error(error)
        return _result(
            UpstreamState.FAILED, "error", raw, fail_reason=message, fail_code=code, at=finished
        )
    response = _dict(body.get("response"))
    video = _dict(response.get("generateVideoResponse")) or response
    samples = _samples(video)
    urls = [url for url in (_uri(sample) for sample in samples) if url]
    inline = [i for i, sample in enumerate(samples) if _inline_video(sample) is not None]
    if inline and not urls:
        urls = [f"{operation_url.split('#')[0]}#{INLINE_FRAGMENT}{inline[0]}"]
    known = [("video_uri", url) for url in urls]
    candidates = [c.url for c in video_candidates(response, known)] if response else urls
    filtered, reasons = safety_filtered(body)
    return _result(
        UpstreamState.SUCCEEDED,
        "done",
        raw,
        urls=candidates,
        fail_reason=reasons,
        safety=filtered and not candidates,
        at=finished,
    )


def inline_video(body: Body, index: int) -> bytes | None:
    """The bytes of sample `index`'s inline video in an operation, if it carries one."""
    if not isinstance(body, dict):
        return None
    response = _dict(body.get("response"))
    samples = _samples(_dict(response.get("generateVideoResponse")) or response)
    if not 0 <= index < len(samples):
        return None
    return _inline_video(samples[index])


def inline_index(url: str) -> int | None:
    """The sample index an inline-video URL (see `parse_poll_answer`) names, else None."""
    fragment = urlsplit(url).fragment
    if not fragment.startswith(INLINE_FRAGMENT):
        return None
    digits = fragment.removeprefix(INLINE_FRAGMENT)
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) < 4 else None


def without_inline_videos(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with every inline video replaced by a note of its length: megabytes of
    base64 never go into the task's snapshot."""

    def clean(value: Any, depth: int) -> Any:
        if depth > 64:
            return None
        if isinstance(value, dict):
            return {
                key: (
                    f"<{len(item)} base64 characters, not kept>"
                    if key in _INLINE_KEYS and isinstance(item, str)
                    else clean(item, depth + 1)
                )
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [clean(item, depth + 1) for item in value]
        return value

    cleaned: dict[str, Any] = clean(body, 0)
    return cleaned


def _samples(video: dict[str, Any]) -> list[dict[str, Any]]:
    """The generated samples: ``generatedSamples`` (the REST answer) or ``generatedVideos``
    / ``videos`` (the shapes SDKs and Vertex use), each a dict."""
    for key in ("generatedSamples", "generatedVideos", "videos"):
        found = video.get(key)
        if isinstance(found, list):
            return [sample for sample in found if isinstance(sample, dict)]
    return []


def _uri(sample: dict[str, Any]) -> str | None:
    video = _dict(sample.get("video")) or sample
    for key in ("uri", "gcsUri", "url"):
        value = video.get(key)
        if isinstance(value, str) and value.strip().lower().startswith(("https://", "http://")):
            return value.strip()
    return None


def _inline_video(sample: dict[str, Any]) -> bytes | None:
    video = _dict(sample.get("video")) or sample
    for key in _INLINE_KEYS:
        value = video.get(key)
        if isinstance(value, str) and value:
            try:
                return base64.b64decode(value, validate=False)
            except ValueError:
                return None
    return None


def _operation_error(error: object) -> tuple[str | None, str]:
    if isinstance(error, str):
        return None, error.strip()
    assert isinstance(error, dict)
    message = error.get("message")
    text = message.strip() if isinstance(message, str) and message.strip() else ""
    status, code = error.get("status"), error.get("code")
    word = status if isinstance(status, str) and status else None
    number = str(code) if isinstance(code, int) and not isinstance(code, bool) else None
    machine = word or number
    return machine, text or f"The operation failed (code {machine or 'unknown'})."


def _result(
    state: UpstreamState,
    raw_status: str,
    raw: dict[str, Any],
    *,
    urls: list[str] | None = None,
    fail_reason: str | None = None,
    fail_code: str | None = None,
    safety: bool = False,
    at: datetime | None = None,
) -> PollResult:
    found = tuple(urls or ())
    return PollResult(
        state=state,
        raw_status=raw_status,
        progress=None,
        video_url=found[0] if found else None,
        fail_reason=fail_reason,
        submit_time=None,
        start_time=None,
        finish_time=at,
        raw=raw,
        fail_code=fail_code,
        safety_filtered=safety,
        video_urls=found,
    )


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
