"""Breaker probes of the poll hop's HTTP exchange (05644cd): ``HttpClient._exchange`` sends
API calls straight on httpx's transport instead of ``AsyncClient.request``. Every hostile
answer a gateway (or a proxy in front of it) can give, served raw by a real TCP server on
127.0.0.1, must come out of a poll exactly as it did through ``AsyncClient.request``
(05644cd^): the same result, or the same error class, code, status and Retry-After.

The reference is the previous exchange, kept here verbatim as a subclass of the real
client: the component under test is not replaced, only compared."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from cli.supervise import HOST
from worker.upstream.errors import TransientUpstreamError, UpstreamError
from worker.upstream.gateway import GatewayClient
from worker.upstream.gemini.client import GeminiClient

TIMEOUT = httpx.Timeout(1.0, connect=1.0)
RUNNING = {"code": "success", "data": {"task_id": "t1", "status": "IN_PROGRESS", "progress": "40%"}}
BODY = json.dumps(RUNNING).encode()


class _Previous(GatewayClient):
    """The exchange as 05644cd^ sent it: ``AsyncClient.request``."""

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        json: dict[str, Any] | None,
        params: dict[str, str] | None,
    ) -> tuple[httpx.Response, bytes | None]:
        response = await self._api.request(method, url, json=json, params=params, headers=headers)
        return response, response.content


def _answer(status: str, headers: list[tuple[str, str]], body: bytes, length: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers)]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _chunked(body: bytes) -> bytes:
    out = b""
    for start in range(0, len(body), 7):
        piece = body[start : start + 7]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


# name -> raw bytes the server writes after reading the request head (None: say nothing),
# and whether it closes the connection right after.
CASES: dict[str, tuple[bytes | None, bool]] = {
    "plain": (_answer("200 OK", [("Content-Type", "application/json")], BODY), False),
    "gzip": (_answer("200 OK", [("Content-Encoding", "gzip")], gzip.compress(BODY)), False),
    "deflate": (_answer("200 OK", [("Content-Encoding", "deflate")], zlib.compress(BODY)), False),
    "br_unsupported": (_answer("200 OK", [("Content-Encoding", "br")], b"\x8b\x00\x80"), False),
    "bad_gzip": (_answer("200 OK", [("Content-Encoding", "gzip")], b"not gzip at all"), False),
    "gzip_twice": (
        _answer("200 OK", [("Content-Encoding", "gzip, gzip")], gzip.compress(gzip.compress(BODY))),
        False,
    ),
    "chunked": (
        _answer("200 OK", [("Transfer-Encoding", "chunked")], _chunked(BODY), length=False),
        False,
    ),
    "chunked_gzip": (
        _answer(
            "200 OK",
            [("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip")],
            _chunked(gzip.compress(BODY)),
            length=False,
        ),
        False,
    ),
    "http10_until_close": (b"HTTP/1.0 200 OK\r\n\r\n" + BODY, True),
    "redirect_302": (_answer("302 Found", [("Location", "/google/v1/tasks/t2")], b""), False),
    "redirect_301": (_answer("301 Moved", [("Location", "http://example.invalid/")], b""), False),
    "redirect_307": (_answer("307 Temporary", [("Location", "/elsewhere")], b"moved"), False),
    "invalid_json": (_answer("200 OK", [], b'{"code": "success", "data": {'), False),
    "non_utf8": (_answer("200 OK", [], b'{"code": "\xff\xfe success"}'), False),
    "utf16_json": (_answer("200 OK", [], json.dumps(RUNNING).encode("utf-16")), False),
    "empty_200": (_answer("200 OK", [], b""), False),
    "empty_204": (b"HTTP/1.1 204 No Content\r\n\r\n", False),
    "html_502": (
        _answer("502 Bad Gateway", [("Content-Type", "text/html")], b"<html>nginx</html>"),
        False,
    ),
    "html_200": (_answer("200 OK", [("Content-Type", "text/html")], b"<html>ok</html>"), False),
    "retry_after_seconds": (_answer("429 Too Many", [("Retry-After", "7")], b""), False),
    "retry_after_date": (
        _answer("503 Busy", [("Retry-After", "Wed, 21 Oct 2099 07:28:00 GMT")], b""),
        False,
    ),
    "retry_after_garbage": (_answer("429 Too Many", [("Retry-After", "soon")], b""), False),
    "retry_after_negative": (_answer("503 Busy", [("Retry-After", "-5")], b""), False),
    "retry_after_twice": (
        _answer("429 Too Many", [("Retry-After", "3"), ("Retry-After", "9")], b""),
        False,
    ),
    "status_999": (_answer("999 Odd", [], BODY), False),
    "continue_then_200": (b"HTTP/1.1 100 Continue\r\n\r\n" + _answer("200 OK", [], BODY), False),
    "reset_mid_body": (_answer("200 OK", [("Content-Length", "5000")], BODY, length=False), True),
    "short_chunked": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789",
        True,
    ),
    "garbage_status_line": (b"SSH-2.0-OpenSSH_9.6\r\n", True),
    "close_without_answer": (b"", True),
    "no_answer_timeout": (None, False),
    "header_latin1": (_answer("200 OK", [("X-Note", "caf\xe9")], BODY), False),
    "big_body": (
        _answer("200 OK", [], b'{"code": "success", "pad": "' + b"x" * 3_000_000 + b'"}'),
        False,
    ),
}


class _Server:
    """Answers each request with the raw bytes of the case its path names."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                path = head.split(b" ", 2)[1].decode()
                case = path.rsplit("/", 1)[-1]
                raw, close = CASES.get(case, (_answer("404 Not Found", [], b""), False))
                if raw is None:
                    await asyncio.sleep(30)
                    return
                writer.write(raw)
                await writer.drain()
                if close:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    async def __aenter__(self) -> _Server:
        self.server = await asyncio.start_server(self.handle, HOST, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def server() -> AsyncIterator[_Server]:
    async with _Server() as running:
        yield running


def _outcome(result: Any) -> tuple[Any, ...]:
    if isinstance(result, UpstreamError):
        retry = getattr(result, "retry_after", None)
        return ("error", type(result).__name__, result.code, result.status, retry)
    return ("result", repr(result))


async def _poll(make: Callable[..., GatewayClient], port: int, case: str) -> tuple[Any, ...]:
    async with make(f"http://{HOST}:{port}", "sk-breaker", timeout=TIMEOUT) as client:
        try:
            return _outcome(await client.poll(case))
        except UpstreamError as error:
            return _outcome(error)


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_hostile_answer_reads_as_it_did_through_async_client_request(
    server: _Server, case: str
) -> None:
    now = await _poll(GatewayClient, server.port, case)
    before = await _poll(_Previous, server.port, case)
    assert now == before


async def test_a_redirect_is_never_followed_by_an_api_call(server: _Server) -> None:
    async with GatewayClient(f"http://{HOST}:{server.port}", "k", timeout=TIMEOUT) as client:
        with pytest.raises(UpstreamError) as raised:
            await client.poll("redirect_302")
    assert raised.value.status == 302
    assert [r.split(b" ", 2)[1] for r in server.requests] == [b"/google/v1/tasks/redirect_302"]


async def test_a_reset_mid_body_is_a_transient_network_error(server: _Server) -> None:
    async with GatewayClient(f"http://{HOST}:{server.port}", "k", timeout=TIMEOUT) as client:
        with pytest.raises(TransientUpstreamError) as raised:
            await client.poll("reset_mid_body")
    assert raised.value.code == "network_error"


async def test_the_request_carries_the_key_and_headers_once(server: _Server) -> None:
    async with GatewayClient(f"http://{HOST}:{server.port}", "sk-x", timeout=TIMEOUT) as client:
        await client.poll("plain")
    names = [
        line.split(b":", 1)[0].lower() for line in server.requests[0].split(b"\r\n")[1:] if line
    ]
    assert sorted(names) == sorted(set(names))  # no header sent twice
    assert b"authorization: bearer sk-x" in server.requests[0].lower()


class _PreviousGemini(GeminiClient):
    """The Gemini client with the exchange of 05644cd^."""

    _exchange = _Previous._exchange


def _auth_lines(head: bytes) -> list[str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return sorted(
        line.lower() for line in lines if line.lower().startswith(("authorization", "x-goog"))
    )


async def test_credentials_in_the_base_url_are_sent_as_before(server: _Server) -> None:
    """``https://user:pass@host`` (Gemini behind a Basic-auth proxy: its key travels in
    ``x-goog-api-key``): httpx's client turned the URL's credentials into HTTP Basic auth
    on every API call, and the exchange must too."""
    sent = []
    for make in (GeminiClient, _PreviousGemini):
        server.requests.clear()
        base = f"http://user:secret@{HOST}:{server.port}"
        async with make(base, "sk-key", timeout=TIMEOUT) as client:
            await client.poll("operations/plain")
        sent.append(_auth_lines(server.requests[0]))
    assert sent[0] == sent[1] == ["authorization: basic dxnlcjpzzwnyzxq=", "x-goog-api-key: sk-key"]


async def test_credentials_in_the_base_url_never_replace_the_gateway_key(server: _Server) -> None:
    """The gateway's key is its ``Authorization``: the URL's credentials cannot ride in the
    same header, and the key wins (through ``AsyncClient.request`` Basic auth replaced it,
    so the gateway never saw the key)."""
    base = f"http://user:secret@{HOST}:{server.port}"
    async with GatewayClient(base, "sk-key", timeout=TIMEOUT) as client:
        await client.poll("plain")
    assert _auth_lines(server.requests[0]) == ["authorization: bearer sk-key"]
