"""API calls to the upstream honour the environment's HTTP proxy, as httpx's client does.

`HttpClient._exchange` sends straight on the transport httpx's client picks for the URL;
this checks, with a real forward proxy and a real gateway stand-in on 127.0.0.1, that the
pick still includes the proxy the environment names (and NO_PROXY), with the same request.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from worker.upstream import UpstreamState
from worker.upstream.gateway import GatewayClient

KEY = "sk-proxy-test"
ANSWER = {"code": "success", "data": {"task_id": "t1", "status": "IN_PROGRESS", "progress": "40%"}}


class _Gateway(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


class _ForwardProxy(BaseHTTPRequestHandler):
    """A plain-http forward proxy: ``GET http://host:port/path`` relayed to that host."""

    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        target = urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
        upstream.request("GET", target.path or "/", headers=headers)
        answer = upstream.getresponse()
        body = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection"):
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        upstream.close()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def servers() -> Iterator[tuple[str, str]]:
    _Gateway.seen, _ForwardProxy.seen = [], []
    started = [ThreadingHTTPServer(("127.0.0.1", 0), h) for h in (_Gateway, _ForwardProxy)]
    for server in started:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    gateway, proxy = (f"http://127.0.0.1:{s.server_address[1]}" for s in started)
    yield gateway, proxy
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("proxied", [True, False])
async def test_a_poll_goes_through_the_proxy_the_environment_names(
    servers: tuple[str, str], monkeypatch: pytest.MonkeyPatch, proxied: bool
) -> None:
    gateway, proxy = servers
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "" if proxied else "127.0.0.1")
    for name in ("http_proxy", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with GatewayClient(gateway, KEY) as client:  # the production transport
        result = await client.poll("t1")
    assert result.state == UpstreamState.RUNNING
    assert result.progress == 40
    assert _Gateway.seen == [("/google/v1/tasks/t1", f"Bearer {KEY}")]
    assert _ForwardProxy.seen == ([f"{gateway}/google/v1/tasks/t1"] if proxied else [])
