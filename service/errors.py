"""One exception for every expected failure, and the one place it becomes problem+json."""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schemas.problems import STATUS, TITLES, Code

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"

# Validation errors on these request fields get a more specific code than the default.
FIELD_CODES = {
    "prompt": Code.INVALID_PROMPT,
    "images": Code.INVALID_IMAGE,
    "metadata": Code.INVALID_METADATA,
}


class ProblemError(Exception):
    def __init__(self, code: Code, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra

    @property
    def status(self) -> int:
        return STATUS[self.code]


def problem_response(
    code: Code, detail: str, *, status: int | None = None, **extra: Any
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
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def from_validation(error: ValidationError) -> ProblemError:
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
        for e in error.errors(include_url=False, include_input=False)
    ]
    first = str(error.errors()[0]["loc"][0]) if error.errors() and error.errors()[0]["loc"] else ""
    code = FIELD_CODES.get(first, Code.VALIDATION_ERROR)
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return ProblemError(code, detail, errors=errors)


async def handle_problem(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.code, exc.detail, **exc.extra)


async def handle_http(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: Code.NOT_FOUND, 405: Code.METHOD_NOT_ALLOWED}.get(exc.status_code)
    if code is None:
        code = Code.VALIDATION_ERROR if exc.status_code < 500 else Code.INTERNAL_ERROR
    return problem_response(code, str(exc.detail), status=exc.status_code)


# 08 connection exception, 53 insufficient resources, 57 operator intervention (e.g. a
# server that is shutting down or starting up: 57P01, 57P03).
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")


async def handle_dependency(request: Request, exc: Exception) -> Response:
    """A database or Redis outage is temporary: 503 so clients retry (with their key)."""
    transient = not isinstance(exc, DBAPIError) or (
        exc.connection_invalidated
        or isinstance(exc, OperationalError | InterfaceError)
        or _sqlstate(exc)[:2] in TRANSIENT_SQLSTATE_CLASSES
    )
    if not transient:
        return await handle_unexpected(request, exc)
    log.warning("dependency_unavailable", path=request.url.path, error=type(exc).__name__)
    return problem_response(Code.UNAVAILABLE, "A backing service is unavailable; retry shortly.")


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", path=request.url.path, error=type(exc).__name__)
    return problem_response(Code.INTERNAL_ERROR, "Internal error; it has been logged.")


HANDLERS = {
    ProblemError: handle_problem,
    HTTPException: handle_http,
    DBAPIError: handle_dependency,
    RedisConnectionError: handle_dependency,
    OSError: handle_dependency,
    Exception: handle_unexpected,
}
