"""A real HTTP webhook receiver on 127.0.0.1 (uvicorn in a thread) that records every
request and answers from a script, e.g. ``[500, 500, 200]``."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.eventually import eventually
from tests.services import free_port, wait_for_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    requests: list[Received] = field(default_factory=list)
    script: dict[str, deque[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *replies: int | tuple[int, dict[str, str]]) -> None:
        """Reply to the next requests on ``path`` in this order, then 200."""
        self.script[path] = deque(r if isinstance(r, tuple) else (r, {}) for r in replies)

    def on(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, path: str, count: int, deadline: float = 30.0) -> list[Received]:
        """The requests received on ``path`` once there are at least ``count``."""
        return await eventually(
            lambda: self.on(path),
            deadline,
            until=lambda received: len(received) >= count,
            what=f"{count} deliveries on {path}",
        )

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(
            Received(request.url.path, dict(request.headers), body, time.monotonic())
        )
        queue = self.script.get(request.url.path)
        status, headers = queue.popleft() if queue else (200, {})
        return Response(status_code=status, headers=headers)

    def start(self) -> None:
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_for_port("127.0.0.1", self.port, time.monotonic() + 10)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
