"""The gateway's own error answers (new-api / one-api, see docs UPSTREAM.md §1).

Bodies come as the gateway's envelope ``{"code", "message", "data"}`` or, from other
routes and middlewares, OpenAI-style ``{"error": {"message", "type", "code"}}``. The
rules for HTTP statuses, Retry-After and transport failures are shared
(`worker.upstream.outcomes`); this module only says what the gateway's codes mean.
"""

from __future__ import annotations

import httpx

from worker.upstream import outcomes
from worker.upstream.errors import Body, UpstreamError
from worker.upstream.outcomes import ErrorPolicy, Operation

TASK_NOT_FOUND_CODE = "task_not_exist"
# The gateway's own trouble: it recorded no task, or its upstream answered an error.
TRANSIENT_CODES = frozenset({"get_task_failed", "do_request_failed", "fail_to_fetch_task"})


def code_and_message(body: Body) -> tuple[str | None, str]:
    """The machine code and verbatim text of a gateway or OpenAI-style error body."""
    if not isinstance(body, dict):
        return None, ""
    error = body.get("error")
    if isinstance(error, dict):
        code = _text(error.get("code")) or _text(error.get("type"))
        return code, _text(error.get("message")) or ""
    if isinstance(error, str) and error:
        return _text(body.get("code")), error
    return _text(body.get("code")), _text(body.get("message")) or ""


POLICY = ErrorPolicy(
    read_code=code_and_message,
    not_found=frozenset({TASK_NOT_FOUND_CODE}),
    transient=TRANSIENT_CODES,
)


def error_from_response(
    response: httpx.Response, op: Operation, *, content: bytes | None = None
) -> UpstreamError:
    """A non-2xx gateway answer as a typed error (`content`: the prefix of a stream)."""
    return outcomes.error_from_response(response, op, POLICY, content=content)


def error_from_answer(
    op: Operation, status: int, code: str, message: str, body: Body
) -> UpstreamError:
    """A 2xx gateway answer whose envelope carries `code != "success"`."""
    return outcomes.error_from_answer(op, status, code, message, body, POLICY)


def _text(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    return None
