"""The gateway's own error answers (new-api / one-api, docs/upstreams.md).

Bodies come as the gateway's envelope ``{"code", "message", "data"}`` or, from other
routes and middlewares, OpenAI-style ``{"error": {"message", "type", "code"}}``. The
rules for HTTP statuses, Retry-After and transport failures are shared
(`worker.upstream.outcomes`); this module only says what the gateway's codes mean and how
its own answers look (anything else in front of it is a proxy's).
"""

from __future__ import annotations

import httpx

from worker.upstream import outcomes
from worker.upstream.errors import Body, UpstreamError
from worker.upstream.outcomes import ErrorPolicy, Operation

TASK_NOT_FOUND_CODE = "task_not_exist"
# The same fact in other words, as gateways and their versions say it (matched
# case-insensitively in the code and the message of a query's answer).
TASK_NOT_FOUND_WORDS = (
    "task_not_exist", "task not exist", "task_not_found", "task not found",
    "task does not exist", "task doesn't exist", "task is not exist", "no such task",
    "任务不存在", "任务未找到", "找不到任务",
)  # fmt: skip
# The gateway's own trouble: it recorded no task, or its upstream answered an error.
TRANSIENT_CODES = frozenset({"get_task_failed", "do_request_failed", "fail_to_fetch_task"})
# The operator's account or key at the gateway ran out (new-api's task route, its relay
# quota codes, and OpenAI's own, which chained gateways pass on).
QUOTA_CODES = frozenset(
    {
        "quota_not_enough",
        "insufficient_user_quota",
        "pre_consume_token_quota_failed",
        "insufficient_quota",
        "entitlement_daily_limit_exceeded",
        "entitlement_total_limit_exceeded",
        "billing_hard_limit_reached",
    }
)
# A 401/403 saying one of these is the key's quota, not a bad key: "该令牌额度已用尽"
# (this token's quota is used up), "用户额度不足" (user quota insufficient), "余额不足".
QUOTA_WORDS = (
    "quota", "额度", "余额", "balance", "exhausted", "用尽", "欠费", "billing", "credit",
    "run out", "ran out", "out of funds", "insufficient fund", "payment required",
    "top up", "top-up", "recharge", "充值",
)  # fmt: skip
# The `type` of the gateway's own OpenAI-style errors (new-api, one-api and their forks).
GATEWAY_ERROR_TYPES = frozenset(
    {"new_api_error", "one_api_error", "shell_api_error", "upstream_error", "openai_error"}
)


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


def is_gateway_answer(body: Body) -> bool:
    """Whether `body` is the gateway's own JSON rather than a proxy's page or JSON.

    Only the gateway's own shapes prove it answered: its envelope ``{"code", "message"}``
    (or ``{"success", "message"}``), or its OpenAI-style error whose `type` is one of
    `GATEWAY_ERROR_TYPES` or whose `code` is one of the gateway's known codes. A bare
    ``{"error": "bad gateway"}`` or ``{"error": {"message": "upstream connect error"}}``
    is what proxies (Envoy, Kong, a CDN) write: not proof.
    """
    if not isinstance(body, dict):
        return False
    error = body.get("error")
    if isinstance(error, dict):
        kind, code = error.get("type"), error.get("code")
        return (isinstance(kind, str) and kind.casefold() in GATEWAY_ERROR_TYPES) or (
            isinstance(code, str) and code.casefold() in _KNOWN_CODES
        )
    if error is not None:
        return False
    return "message" in body and bool({"code", "success"} & body.keys())


_KNOWN_CODES = (
    frozenset({TASK_NOT_FOUND_CODE, "invalid_request", "model_price_error"})
    | TRANSIENT_CODES
    | QUOTA_CODES
)

POLICY = ErrorPolicy(
    read_code=code_and_message,
    not_found=frozenset({TASK_NOT_FOUND_CODE}),
    not_found_words=TASK_NOT_FOUND_WORDS,
    transient=TRANSIENT_CODES,
    quota=QUOTA_CODES,
    quota_words=QUOTA_WORDS,
    own_answer=is_gateway_answer,
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
