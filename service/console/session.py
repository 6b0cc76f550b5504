"""The console's browser session: a signed cookie holding the admin key's id (never the
key) and a CSRF token, re-signed on each request so it expires after ``IDLE_SECONDS``
without use; the key is re-checked on every request (revoked or gone: back to login)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request

from core import apikeys
from schemas.settings import Settings
from schemas.status import Role
from service.context import ctx

COOKIE = "gv_console"
PATH = "/console"
# Idle: a session unused this long is over; absolute: a login lasts at most this long.
IDLE_SECONDS = 30 * 60
MAX_SECONDS = 12 * 3600
_SALT = "google-video.console.session"


class LoginRequired(Exception):
    """No usable session: the request goes back to the login form (the cookie cleared)."""


@dataclass(frozen=True)
class Session:
    """``key_id`` None: a visitor with only a login-form CSRF token."""

    key_id: str | None
    csrf: str
    since: float

    def dumps(self, settings: Settings) -> str:
        body = {"k": self.key_id, "c": self.csrf, "s": self.since}
        return str(_serializer(settings).dumps(body))


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    """Signed under a key derived from each SECRET_KEY (the current one signs; previous
    ones still verify, so a rotation does not log everybody out at once)."""
    derived = [
        hashlib.sha256(b"google-video:console-session:" + key.encode()).digest()
        for key in reversed(settings.secret_keys)
    ]
    return URLSafeTimedSerializer(derived, salt=_SALT)


def fresh(key_id: str | None) -> Session:
    """A new session (new CSRF token): at login, and for a visitor of the login form."""
    return Session(key_id, secrets.token_urlsafe(32), time.time())


def read(request: Request) -> Session | None:
    """The request's session if its cookie is signed by us, younger than the idle and
    absolute limits; else None."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        body: Any = _serializer(ctx(request).settings).loads(raw, max_age=IDLE_SECONDS)
    except BadSignature:
        return None
    if not isinstance(body, dict):
        return None
    key_id, csrf, since = body.get("k"), body.get("c"), body.get("s")
    if not isinstance(csrf, str) or not isinstance(since, int | float):
        return None
    if key_id is not None and not isinstance(key_id, str):
        return None
    if time.time() - since > MAX_SECONDS:
        return None
    return Session(key_id, csrf, float(since))


async def admin(request: Request) -> Session:
    """The logged-in session whose key still exists, is an admin key and is not revoked;
    raises `LoginRequired` otherwise. Keeps the session for `set_cookie` to re-sign."""
    session = read(request)
    if session is None or session.key_id is None:
        raise LoginRequired
    async with ctx(request).engine.connect() as conn:
        record = await apikeys.find(conn, session.key_id)
    if record is None or record.role != Role.ADMIN or record.revoked_at is not None:
        raise LoginRequired
    if await ctx(request).queue.exists(_ended_key(session)):
        raise LoginRequired
    request.state.console_session = session
    return session


async def end(request: Request, session: Session) -> None:
    """Log ``session`` out for good: the cookie is signed, so a copy of it (another tab,
    a stolen one) would verify until its idle timeout; its CSRF token, unique to the
    session, is remembered in Redis as ended until the session could have lasted anyway."""
    await ctx(request).queue.set(_ended_key(session), b"1", ex=MAX_SECONDS)


def _ended_key(session: Session) -> str:
    return "console:ended:" + hashlib.sha256(session.csrf.encode()).hexdigest()


def csrf_ok(session: Session | None, sent: str | None) -> bool:
    return (
        session is not None
        and sent is not None
        and hmac.compare_digest(session.csrf.encode(), sent.encode())
    )


def cookie_header(settings: Settings, session: Session | None) -> str:
    """The ``Set-Cookie`` value: HttpOnly, SameSite=Strict, Path=/console, no Max-Age or
    Expires (gone with the browser session), Secure when PUBLIC_URL is https. None clears."""
    secure = urlsplit(str(settings.public_url or "")).scheme == "https"
    flags = f"Path={PATH}; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
    if session is None:
        return f"{COOKIE}=; {flags}; Max-Age=0"
    return f"{COOKIE}={session.dumps(settings)}; {flags}"
