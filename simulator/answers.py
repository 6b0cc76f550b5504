"""Error answers as real gateways and the proxies in front of them send them.

Three kinds of body, as in ``upstream-corpus/gateway/``: the gateway's own envelope
``{"code", "message", "data": null}``; the OpenAI-style ``{"error": {"message", "type":
"new_api_error"}}`` of new-api's middlewares; and what a proxy answers itself (an HTML
page, or nothing at all). ``retry_after`` is a number of seconds for the
``Retry-After`` header, ``None`` for no header.
"""

import random
import time

from starlette.responses import HTMLResponse, JSONResponse, Response

from simulator.directives import SubmitOutcome

RAI_REASON = (
    "Veo could not generate 1 videos based on the prompt provided. You will not be charged "
    "for this request. Try rephrasing the prompt. If you think this was an error, send "
    "feedback. Support codes: 42237218"
)

# The gateway's own words (corpus s07, s09), full-width punctuation included.
SATURATED = "当前分组上游负载已饱和，请稍后再试"  # noqa: RUF001
RATE_LIMIT = "您已达到请求数限制：1分钟内最多请求10次"  # noqa: RUF001

_NGINX_PAGES = {
    404: ("404 Not Found", "nginx"),
    502: ("502 Bad Gateway", "nginx"),
    504: ("504 Gateway Time-out", "nginx/1.16.1"),
}
_CDN_TITLES = {
    520: "Web server is returning an unknown error",
    521: "Web server is down",
    522: "Connection timed out",
    523: "Origin is unreachable",
    524: "A timeout occurred",
}


def _headers(retry_after: int | None) -> dict[str, str] | None:
    return None if retry_after is None else {"Retry-After": str(retry_after)}


def request_id() -> str:
    """A new-api request id: the time as digits, then random digits."""
    return time.strftime("%Y%m%d%H%M%S") + f"{random.randrange(10**6):06d}"


def gateway_error(
    status_code: int, code: str, message: str, retry_after: int | None = None
) -> JSONResponse:
    """The gateway's envelope error ``{"code", "message", "data": null}``."""
    return JSONResponse(
        {"code": code, "message": message, "data": None},
        status_code=status_code,
        headers=_headers(retry_after),
    )


def new_api_error(status_code: int, message: str, retry_after: int | None = None) -> JSONResponse:
    """new-api's OpenAI-style error, the message ending in its request id."""
    return JSONResponse(
        {"error": {"message": f"{message} (request id: {request_id()})", "type": "new_api_error"}},
        status_code=status_code,
        headers=_headers(retry_after),
    )


def empty(status_code: int, retry_after: int | None = None) -> Response:
    """A bare status with no body and no content type (a rate limiter, a dropped proxy)."""
    return Response(status_code=status_code, headers=_headers(retry_after))


def proxy_page(status_code: int) -> HTMLResponse:
    """The HTML page nginx (502, 504) or a CDN (520-524) sends when the origin fails it,
    or nginx's 404 for a path it has no route for."""
    if status_code in _NGINX_PAGES:
        title, server = _NGINX_PAGES[status_code]
        body = (
            f"<html>\n<head><title>{title}</title></head>\n<body>\n"
            f"<center><h1>{title}</h1></center>\n<hr><center>{server}</center>\n"
            "</body>\n</html>\n"
        )
    else:
        title = _CDN_TITLES[status_code]
        body = (
            "<!DOCTYPE html>\n<html>\n<head><title>gateway.example | "
            f"{status_code}: {title}</title></head>\n<body>\n"
            f"<h1>{title}</h1><p>Error code {status_code}</p>\n"
            "</body>\n</html>\n"
        )
    return HTMLResponse(body, status_code=status_code)


def overloaded(retry_after: int | None = None) -> JSONResponse:
    """429 ``upstream_overloaded`` with ``Retry-After: 1`` unless told otherwise."""
    return gateway_error(
        429,
        "upstream_overloaded",
        "upstream is overloaded",
        1 if retry_after is None else retry_after,
    )


def unauthorized() -> JSONResponse:
    """A wrong key (the simulator's default answer to it)."""
    return gateway_error(401, "unauthorized", "invalid api key")


def token_exhausted() -> JSONResponse:
    """401: the key's quota ran out (p19); polls are refused although tasks keep running."""
    return new_api_error(
        401, "[sk-sim***key] 该令牌额度已用尽 !token.UnlimitedQuota && token.RemainQuota = 0"
    )


def task_not_exist() -> JSONResponse:
    return gateway_error(400, "task_not_exist", "task_not_exist")


def submit_rejection(outcome: SubmitOutcome, model: str, retry_after: int | None) -> Response:
    """The answer of a scripted ``[sim:submit=OUTCOME]`` other than ``timeout``."""
    match outcome:
        case SubmitOutcome.BAD_REQUEST:
            return gateway_error(400, "invalid_request", "scripted invalid request")
        case SubmitOutcome.BAD_KEY:
            return new_api_error(401, "无效的令牌")
        case SubmitOutcome.QUOTA:
            return gateway_error(403, "quota_not_enough", "user quota is not enough")
        case SubmitOutcome.OVERLOADED:
            return overloaded(retry_after)
        case SubmitOutcome.BUSY:
            return gateway_error(429, "fail_to_fetch_task", SATURATED, retry_after)
        case SubmitOutcome.RATE_LIMITED:
            return new_api_error(429, RATE_LIMIT, retry_after)
        case SubmitOutcome.EMPTY_429:
            return empty(429, retry_after)
        case SubmitOutcome.FAILED:
            return gateway_error(500, "do_request_failed", "scripted upstream request failure")
        case SubmitOutcome.NO_CHANNEL:
            return new_api_error(
                503, f"当前分组 default 下对于模型 {model} 无可用渠道", retry_after
            )
        case SubmitOutcome.PROXY_502_EMPTY:
            return empty(502)
        case SubmitOutcome.TIMEOUT:
            raise ValueError("a held-back submit has no rejection")
        case _:
            return proxy_page(int(outcome.value))
