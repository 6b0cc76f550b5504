"""Downloads through the threaded transport (`worker.upstream.threaded`), the one a client
built without an injected transport uses, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from worker.upstream import UpstreamError
from worker.upstream.gateway.client import GatewayClient

MiB = 1024 * 1024
BODY = bytes(range(256)) * (3 * MiB // 256)


class _Server:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.headers: list[dict[str, str]] = []
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.http.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/video")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                if self.path == "/video":
                    self.wfile.write(BODY)
                elif self.path == "/cut":  # dies halfway
                    self.wfile.write(BODY[:MiB])
                    self.close_connection = True
                elif self.path == "/stall":  # then nothing, until the test is done
                    self.wfile.write(BODY[: 64 * 1024])
                    self.wfile.flush()
                    server.release.wait(timeout=30)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def server() -> Iterator[_Server]:
    server = _Server()
    thread = threading.Thread(target=server.http.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.http.shutdown()
    server.http.server_close()
    thread.join(timeout=10)


async def test_a_redirected_download_arrives_whole_without_the_key(server: _Server) -> None:
    async with (
        GatewayClient(server.url, "secret-key") as client,
        client.download(f"{server.url}/redirect") as download,
    ):
        assert download.content_length == len(BODY)
        body = b"".join([chunk async for chunk in download.chunks])
    assert body == BODY
    assert [h.get("authorization") for h in server.headers] == [None, None]
    assert [h.get("accept-encoding") for h in server.headers] == ["identity", "identity"]


async def test_a_body_cut_short_raises_an_upstream_error(server: _Server) -> None:
    async with GatewayClient(server.url, "k") as client:
        with pytest.raises(UpstreamError):
            async with client.download(f"{server.url}/cut") as download:
                async for _ in download.chunks:
                    pass


async def test_an_abandoned_stalled_download_does_not_wait_for_its_read_timeout(
    server: _Server,
) -> None:
    started = time.monotonic()
    async with GatewayClient(server.url, "k") as client:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5), client.download(f"{server.url}/stall") as download:
                async for _ in download.chunks:
                    pass
    # The download's read timeout is 60 s; the caller's deadline is what counts.
    assert time.monotonic() - started < 10
