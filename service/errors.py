"""One exception for every expected failure, and the one place it becomes problem+json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.outages import database_unreachable, sqlstate
from core.storage import StorageError
from schemas.problems import STATUS, TITLES, Code
from service.metrics import route_template

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"

# Validation errors on these request fields get a more specific code than the default.
FIELD_CODES = {
    "prompt": Code.INVALID_PROMPT,
    "images": Code.INVALID_IMAGE,
    "metadata": Code.INVALID_METADATA,
    "model": Code.UNKNOWN_MODEL,
    "after": Code.INVALID_CURSOR,
    "before": Code.INVALID_CURSOR,
}


class ProblemError(Exception):
    def __init__(
        self, code: Code, detail: str, *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra

    @property
    def status(self) -> int:
        return STATUS[self.code]


def problem_response(
    code: Code,
    detail: str,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    status = status or STATUS[code]
    body = {
        "type": f"https://google-video.internal/problems/{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "code": str(code),
        "detail": detail,
        **extra,
        # Lets OpenAI-style clients (the official SDK) show the message.
        "error": {"message": detail, "type": "invalid_request_error", "code": str(code)},
    }
    all_headers = dict(headers or {})
    if status in (429, 503):
        all_headers.setdefault("Retry-After", "1")
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=all_headers)


# A problem lists at most this many field errors (a large body can hold thousands).
MAX_FIELD_ERRORS = 20


def from_validation(error: ValidationError) -> ProblemError:
    found = error.errors(include_url=False, include_input=False, include_context=False)
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
        for e in found[:MAX_FIELD_ERRORS]
    ]
    if len(found) > MAX_FIELD_ERRORS:
        errors.append({"field": "body", "message": f"and {len(found) - MAX_FIELD_ERRORS} more"})
    first = str(found[0]["loc"][0]) if found and found[0]["loc"] else ""
    code = FIELD_CODES.get(first, Code.VALIDATION_ERROR)
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return ProblemError(code, detail, errors=errors)


async def handle_problem(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.code, exc.detail, headers=exc.headers, **exc.extra)


async def handle_http(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: Code.NOT_FOUND, 405: Code.METHOD_NOT_ALLOWED}.get(exc.status_code)
    if code is None:
        code = Code.VALIDATION_ERROR if exc.status_code < 500 else Code.INTERNAL_ERROR
    # Starlette's 405 carries the route's ``Allow``.
    return problem_response(code, str(exc.detail), status=exc.status_code, headers=exc.headers)


# 22 data exception (a value the column cannot hold: NUL in text, an integer out of
# range). The API models refuse such values first; this is the net under them.
DATA_SQLSTATE_CLASS = "22"


async def handle_dependency(request: Request, exc: Exception) -> Response:
    """A database or Redis outage is temporary: 503 so clients retry (with their key)."""
    if isinstance(exc, DBAPIError) and sqlstate(exc)[:2] == DATA_SQLSTATE_CLASS:
        log.error("unstorable_value", route=route_template(request.scope), sqlstate=sqlstate(exc))
        return problem_response(
            Code.VALIDATION_ERROR, "A value in the request cannot be stored (out of range)."
        )
    if isinstance(exc, DBAPIError) and not database_unreachable(exc):
        return await handle_unexpected(request, exc)
    log.warning(
        "dependency_unavailable", route=route_template(request.scope), error=type(exc).__name__
    )
    return problem_response(Code.UNAVAILABLE, "A backing service is unavailable; retry shortly.")


async def handle_storage(request: Request, exc: Exception) -> Response:
    """The object store failed a write or read the API makes itself (an upload, a create's
    inline image): down, or refusing what it is sent (S3_CHECKSUM_ALGORITHM on a store
    without flexible checksums, a permission). The operator's to fix, not the client's:
    503, with the store's answer (which names the setting) in the log line."""
    log.warning(
        "storage_unavailable",
        route=route_template(request.scope),
        error=type(exc).__name__,
        detail=str(exc),
    )
    return problem_response(Code.UNAVAILABLE, "A backing service is unavailable; retry shortly.")


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", route=route_template(request.scope), error=type(exc).__name__)
    return internal_error()


def internal_error() -> Response:
    # The connection may be in any state after an unexpected error: say it is closed
    # rather than drop it under a keep-alive client.
    return problem_response(
        Code.INTERNAL_ERROR,
        "Internal error; it has been logged.",
        headers={"Connection": "close"},
    )


# Starlette gives the handler of ``Exception`` to its outermost middleware, outside ours
# (no X-Request-ID, and it re-raises after answering): ``LastResort`` handles those.
HANDLERS = {
    ProblemError: handle_problem,
    HTTPException: handle_http,
    DBAPIError: handle_dependency,
    RedisConnectionError: handle_dependency,
    OSError: handle_dependency,
    StorageError: handle_storage,
}


class LastResort:
    """Inside the request-id middleware: a client that went away mid-request is only its
    access-log line (status 499); any other escaped exception is logged once and answered
    500 problem+json with ``Connection: close`` (when no response has started yet)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except ClientDisconnect:
            pass  # nothing to answer; the access log's line says 499
        except Exception as exc:
            if started:
                raise  # the server closes the connection and logs it
            log.exception("unhandled_error", route=route_template(scope), error=type(exc).__name__)
            await internal_error()(scope, receive, send)
