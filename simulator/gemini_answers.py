"""The Gemini API's answers as Google sends them (``upstream-corpus/gemini/``): errors as
``google.rpc.Status`` JSON, and long-running operations."""

import base64
from typing import Any

from starlette.responses import JSONResponse, Response

from simulator import answers
from simulator.directives import SubmitOutcome
from simulator.state import QueryError
from simulator.timeline import Phase, Snapshot

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
# google.rpc.Code numbers of the canonical codes used here.
_CODES = {
    "INVALID_ARGUMENT": 3,
    "NOT_FOUND": 5,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "UNAUTHENTICATED": 16,
}
# Google's safety-filter text (corpus g04).
RAI_REASON = (
    "We encountered an issue with the audio for your prompt, which means we could not create "
    "your video. This can sometimes happen due to our safety filters or other processing "
    "issues. Please modify your request and try again. You have not been charged for this "
    "attempt."
)
QUOTA = "Resource has been exhausted (e.g. check quota)."


def error(
    http: int,
    status: str,
    message: str,
    *,
    reason: str | None = None,
    retry_after: int | None = None,
) -> JSONResponse:
    """``{"error": {"code", "message", "status"[, "details"]}}``."""
    body: dict[str, Any] = {"code": http, "message": message, "status": status}
    if reason is not None:
        body["details"] = [{"@type": ERROR_INFO, "reason": reason, "domain": "googleapis.com"}]
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    return JSONResponse({"error": body}, status_code=http, headers=headers)


def key_refused() -> JSONResponse:
    """A wrong key: Google answers 400, not 401."""
    return error(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        reason="API_KEY_INVALID",
    )


def key_missing() -> JSONResponse:
    return error(
        403,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity)."
        " Please use API Key or other form of API consumer identity to call this API.",
    )


def key_suspended() -> JSONResponse:
    """The key stopped working while tasks run (the ``key_exhausted`` quirk, ``poll401``)."""
    return error(403, "PERMISSION_DENIED", "Permission denied: Consumer has been suspended.")


def model_not_found(model: str) -> JSONResponse:
    return error(
        404,
        "NOT_FOUND",
        f"models/{model} is not found for API version v1beta, or is not supported for"
        " predictLongRunning. Call ListModels to see the list of available models.",
    )


def operation_not_found(name: str) -> JSONResponse:
    return error(404, "NOT_FOUND", f"Operation {name} not found.")


def submit_rejection(outcome: SubmitOutcome, retry_after: int | None) -> Response:
    """The answer of a scripted ``[sim:submit=OUTCOME]`` other than ``timeout``."""
    match outcome:
        case SubmitOutcome.BAD_REQUEST:
            return error(400, "INVALID_ARGUMENT", "scripted invalid argument")
        case SubmitOutcome.BAD_KEY:
            return key_refused()
        case SubmitOutcome.QUOTA:
            return error(
                403, "PERMISSION_DENIED", "This API method requires billing to be enabled."
            )
        case (
            SubmitOutcome.OVERLOADED
            | SubmitOutcome.BUSY
            | SubmitOutcome.RATE_LIMITED
            | SubmitOutcome.EMPTY_429
        ):
            return error(429, "RESOURCE_EXHAUSTED", QUOTA, retry_after=retry_after)
        case SubmitOutcome.FAILED:
            return error(500, "INTERNAL", "Internal error encountered.")
        case SubmitOutcome.NO_CHANNEL:
            return error(
                503,
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
                retry_after=retry_after,
            )
        case SubmitOutcome.PROXY_502_EMPTY:
            return answers.empty(502)
        case SubmitOutcome.TIMEOUT:
            raise ValueError("a held-back submit has no rejection")
        case _:
            return answers.proxy_page(int(outcome.value))


def query_error(kind: QueryError, name: str, retry_after: int | None) -> Response:
    """A scripted error of an operation's query (``task_not_exist``, ``poll429`` …)."""
    match kind:
        case QueryError.TASK_NOT_EXIST:
            return operation_not_found(name)
        case QueryError.QUOTA_EXHAUSTED:
            return key_suspended()
        case QueryError.OVERLOADED | QueryError.OVERLOADED_EMPTY:
            return error(429, "RESOURCE_EXHAUSTED", QUOTA, retry_after=retry_after)
        case QueryError.FAILED:
            return error(500, "INTERNAL", "Internal error encountered.")
        case QueryError.PROXY_502:
            return answers.proxy_page(502)
        case QueryError.NOT_FOUND_PAGE:
            return answers.proxy_page(404)
        case _:
            return answers.empty(502)


def operation(
    name: str,
    snapshot: Snapshot,
    *,
    video_uri: str,
    fail_reason: str | None,
    safety: bool,
    with_video: bool,
    inline: bytes | None = None,
) -> dict[str, Any]:
    """The operation at `snapshot`: no ``done`` before it starts, ``done: false`` while it
    runs, then an ``error``, the filter's counts, or the sample (by URI, or `inline`)."""
    phase = snapshot.phase
    if phase in (Phase.NOT_START, Phase.SUBMITTED):
        return {"name": name}
    if not phase.finished:
        return {"name": name, "done": False}
    if phase is Phase.FAILURE:
        message = fail_reason or "Internal error encountered."
        return {"name": name, "done": True, "error": {"code": 13, "message": message}}
    result: dict[str, Any] = {}
    if safety:
        result = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [RAI_REASON]}
    elif with_video and inline is not None:
        encoded = base64.b64encode(inline).decode()
        result = {
            "generatedSamples": [{"video": {"encodedVideo": encoded, "encoding": "video/mp4"}}]
        }
    elif with_video:
        result = {"generatedSamples": [{"video": {"uri": video_uri}}]}
    return {
        "name": name,
        "done": True,
        "response": {"generateVideoResponse": result},
    }
