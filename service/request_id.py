"""The request id: the caller's ``X-Request-ID`` when it is a safe token, else a new one.

It is echoed in the answer's ``X-Request-ID``, bound to every log line of the request
(structlog contextvars), kept on ``request.state.request_id`` (a create stores it on its
task, so the worker's lines for that task and its webhook carry it too).
"""

from __future__ import annotations

import re
import secrets

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
# What a caller's id may be (it is echoed in a header, stored on the task and written
# to every log line): up to 64 characters of a URL-safe alphabet, nothing to escape.
_INCOMING = re.compile(rb"[A-Za-z0-9._:/+=-]{1,64}")


def accepted(incoming: bytes) -> str:
    """``incoming`` if it is a valid request id, else a new one (16 hex digits)."""
    return incoming.decode() if _INCOMING.fullmatch(incoming) else secrets.token_hex(8)


def request_id_of(request: Request) -> str | None:
    """The id :class:`RequestIdMiddleware` gave ``request`` (None outside it)."""
    found: str | None = getattr(request.state, "request_id", None)
    return found


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accepted(dict(scope["headers"]).get(b"x-request-id", b""))
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)
