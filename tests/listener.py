"""A raw TCP listener on 127.0.0.1 for egress tests: it counts every connection (so a
test can show that nothing arrived, not even a TLS handshake), records each HTTP request
head and body, and answers from a script per path."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

# An answer: raw bytes to write, or a coroutine that writes (slowly, say) itself.
Answer = bytes | Callable[[asyncio.StreamWriter], Awaitable[None]]

NO_CONTENT = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"


def reply(status: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    """A complete HTTP/1.1 answer that closes the connection."""
    lines = [f"HTTP/1.1 {status}", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def redirect(location: str, status: str = "302 Found") -> bytes:
    return reply(status, {"Location": location})


@dataclass
class Request:
    method: str
    target: str  # path and query, as sent
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Listener:
    port: int = 0
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    answers: dict[str, Answer] = field(default_factory=dict)

    def url(self, path: str = "/", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def on(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            first, *lines = head.rstrip("\r\n").split("\r\n")
            method, target, _ = first.split(" ", 2)
            headers = dict(line.split(":", 1) for line in lines)
            headers = {k.strip().lower(): v.strip() for k, v in headers.items()}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            path = target.split("?", 1)[0]
            self.requests.append(Request(method, target, path, headers, body))
            answer = self.answers.get(path, NO_CONTENT)
            if isinstance(answer, bytes):
                writer.write(answer)
            else:
                await answer(writer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass  # not HTTP (a TLS handshake) or the client gave up: counted all the same
        finally:
            writer.close()


@asynccontextmanager
async def listening(tls: ssl.SSLContext | None = None) -> AsyncIterator[Listener]:
    """A :class:`Listener` on a free port of 127.0.0.1 for the block's duration (over TLS
    with the `tls` server context: see ``tests.tls``)."""
    listener = Listener()
    server = await asyncio.start_server(listener._serve, host="127.0.0.1", port=0, ssl=tls)
    listener.port = server.sockets[0].getsockname()[1]
    async with server:
        yield listener
