"""What every console response gets: the security headers, problems as HTML pages, the
cross-site checks of every POST, and the session cookie re-signed (sliding idle timeout).

Pure ASGI middleware on the console's mount: it sees each console request before its
route and each response before it leaves."""

from __future__ import annotations

from urllib.parse import urlsplit

import structlog
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.problems import STATUS, Code
from service.console import render, session
from service.context import ctx
from service.errors import ProblemError

log = structlog.get_logger(__name__)

_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def csp(media_origin: str | None = None) -> str:
    """The Content-Security-Policy: only this origin's scripts, styles, images and media
    (plus ``media_origin``, the store's, when videos play from presigned URLs); no inline
    script or style, no framing, no form posts elsewhere."""
    media = "'self'" + (f" {media_origin}" if media_origin else "")
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"media-src {media}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``; None when it has none."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


class ConsoleGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The API's handlers answer problem+json inside each route; here every exception
        # comes out to this middleware, which answers an HTML page.
        scope = {**scope, "starlette.exception_handlers": ({}, {})}
        request = Request(scope, receive)
        started = False

        async def secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", csp())
                cookie = _cookie(request)
                if cookie is not None:
                    headers.append("Set-Cookie", cookie)
            await send(message)

        try:
            if scope["method"] == "POST" and not _same_origin(request):
                raise ProblemError(Code.FORBIDDEN, "Cross-site form posts are refused.")
            await self.app(scope, receive, secured)
        except session.LoginRequired:
            if started:
                raise
            request.state.console_cookie = session.cookie_header(ctx(request).settings, None)
            request.state.console_session = None
            await RedirectResponse("/console/login", status_code=303)(scope, receive, secured)
        except ProblemError as exc:
            if started:
                raise
            await problem(request, exc.status, str(exc.code), exc.detail)(scope, receive, secured)
        except HTTPException as exc:
            if started:
                raise
            code = {404: Code.NOT_FOUND, 405: Code.METHOD_NOT_ALLOWED}.get(
                exc.status_code, Code.VALIDATION_ERROR
            )
            response = problem(request, exc.status_code, str(code), str(exc.detail))
            response.headers.update(exc.headers or {})  # a 405's Allow
            await response(scope, receive, secured)
        except (DBAPIError, RedisError, OSError) as exc:
            if started:
                raise
            log.warning("console_dependency", path=scope.get("path"), error=type(exc).__name__)
            detail = "A backing service is unavailable; retry shortly."
            response = problem(request, STATUS[Code.UNAVAILABLE], "unavailable", detail)
            await response(scope, receive, secured)
        except Exception as exc:
            if started:
                raise
            log.exception("console_error", path=scope.get("path"), error=type(exc).__name__)
            response = problem(
                request, STATUS[Code.INTERNAL_ERROR], "internal_error", "Internal error; logged."
            )
            await response(scope, receive, secured)


def problem(request: Request, status: int, code: str, detail: str) -> Response:
    """A problem as an HTML page (its code and detail, escaped)."""
    return render.page(request, "problem.html", status=status, code=code, detail=detail)


def _cookie(request: Request) -> str | None:
    """The Set-Cookie a response carries: one a handler chose (login, logout), else the
    checked session re-signed, which restarts its idle timeout."""
    chosen: str | None = getattr(request.state, "console_cookie", None)
    if chosen is not None:
        return chosen
    current: session.Session | None = getattr(request.state, "console_session", None)
    if current is None or current.key_id is None:
        return None
    return session.cookie_header(ctx(request).settings, current)


def _same_origin(request: Request) -> bool:
    """A POST a browser sends from another site says so, before any form is read:
    ``Sec-Fetch-Site`` (set by the browser, not by page scripts) must be ``same-origin``;
    without it, an ``Origin`` must be ours. Under ``Referrer-Policy: no-referrer`` a
    browser sends ``Origin: null`` even for our own forms, so ``null`` passes only with
    ``Sec-Fetch-Site: same-origin``. A client that sends neither still needs the token."""
    headers = Headers(scope=request.scope)
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = headers.get("origin")
    if origin is None:
        return True
    allowed = {origin_of(str(request.base_url))}
    public = ctx(request).settings.public_url
    if public:
        allowed.add(origin_of(str(public)))
    return origin in allowed
