"""A request body must arrive within a deadline of its headers (README, "Limits").

A body trickled a byte at a time holds a connection, a task and buffers for as long as
the client likes; uvicorn has no such timeout. Here the handler's reads stop at the
deadline with a 408 ``request_timeout`` problem, and any answer sent before the body was
read to its end says ``Connection: close``, so the server drops the rest instead of
reading it for ever. (Slow headers are bounded before the app runs: ``cli/header_deadline.py``.)
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.problems import Code
from service.errors import ProblemError

CLOSE = (b"connection", b"close")


class BodyDeadline:
    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        complete = not _has_body(scope["headers"])

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:  # e.g. a streaming answer waiting for a disconnect: no deadline
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise ProblemError(
                    Code.REQUEST_TIMEOUT,
                    f"The request body did not arrive within {self.seconds:g} s.",
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not complete:
                headers = list(message.get("headers", ()))
                if CLOSE not in headers:
                    message = {**message, "headers": [*headers, CLOSE]}
            await send(message)

        await self.app(scope, timed_receive, closing_send)


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False
