"""Login (an admin key, entered once, verified as the API verifies bearer keys) and
logout. The browser then holds only the signed session cookie."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core import apikeys
from schemas.clock import utcnow
from schemas.problems import Code
from service import ratelimit
from service.console import render, session
from service.console.forms import CSRF_FIELD, form_of, posted
from service.context import ctx
from service.errors import ProblemError
from service.ratelimit import client_address, rate_limited

MAX_KEY_CHARS = 512


async def show(request: Request) -> Response:
    """The form, with a fresh visitor session carrying its CSRF token; a live admin
    session goes to the videos instead (a link to the form from another site must not
    replace it, which would log the admin out)."""
    current = session.read(request)
    if current is not None and current.key_id is not None:
        try:
            await session.admin(request)
        except session.LoginRequired:
            pass
        else:
            return RedirectResponse("/console/videos", status_code=303)
    visitor = session.fresh(None)
    request.state.console_session = visitor
    request.state.console_cookie = session.cookie_header(ctx(request).settings, visitor)
    return render.page(request, "login.html", error="")


async def submit(request: Request) -> Response:
    """Check the form's token, then the key: an unknown key counts against the caller's
    address (``failed_auth_per_minute_per_address``, shared with the API), a client key
    is refused (403); an admin key starts a new session (a new CSRF token)."""
    context = ctx(request)
    fields = await form_of(request)
    visitor = session.read(request)
    if not session.csrf_ok(visitor, fields.get(CSRF_FIELD)):
        raise ProblemError(Code.FORBIDDEN, "The form's CSRF token is missing or wrong.")
    config = await context.config.get()
    rule = ratelimit.failed_auth(config)
    address = client_address(request)
    wait = context.limits.refused(rule, address)
    if wait is not None:
        raise rate_limited(wait, "Too many failed logins from this address.")
    key = fields.get("key", "").strip()
    principal = None
    if key and len(key) <= MAX_KEY_CHARS:
        async with context.engine.begin() as conn:
            principal = await apikeys.authenticate(conn, key)
            if principal is not None:
                await apikeys.mark_used(conn, principal.key_id, utcnow())
    if principal is None:
        wait = await context.limits.hit(rule, address)
        if wait is not None:
            raise rate_limited(wait, "Too many failed logins from this address.")
        return _again(request, 401, "The key is not valid or has been revoked.")
    if not principal.is_admin:
        return _again(request, 403, "The console needs an admin key; this is a client key.")
    started = session.fresh(principal.key_id)
    request.state.console_session = started
    request.state.console_cookie = session.cookie_header(context.settings, started)
    return RedirectResponse("/console/videos", status_code=303)


def _again(request: Request, status: int, error: str) -> Response:
    visitor = session.fresh(None)
    request.state.console_session = visitor
    request.state.console_cookie = session.cookie_header(ctx(request).settings, visitor)
    return render.page(request, "login.html", status=status, error=error)


async def logout(request: Request) -> Response:
    current, _ = await posted(request)
    await session.end(request, current)
    request.state.console_session = None
    request.state.console_cookie = session.cookie_header(ctx(request).settings, None)
    return RedirectResponse("/console/login", status_code=303)
