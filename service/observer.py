"""The shape shared by middlewares that record each HTTP request once it ends (the
access log, the HTTP metrics): its time and the status sent."""

from __future__ import annotations

import time
from typing import ClassVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestObserver:
    """Calls `record` once per HTTP request, after the app is done (or raised), with the
    status sent -- `unanswered` when no response started -- and the seconds it took.
    Other scopes pass through unrecorded."""

    unanswered: ClassVar[int]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = self.unanswered

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            self.record(scope, status, started)

    def record(self, scope: Scope, status: int, started: float) -> None:
        """Record one request begun at `started` (``time.perf_counter()``)."""
        raise NotImplementedError
