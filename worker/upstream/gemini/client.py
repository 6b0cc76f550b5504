"""HTTP client for Google's Gemini API (Veo through ``predictLongRunning``).

The wire format lives in `protocol`, the error policy in `errors`; this module moves
bytes, measures latency and logs. Every call carries ``x-goog-api-key`` -- the download
too, which the gateway's never does -- but only to the API's own origin: a redirect to
another host (Google's storage) is followed without the key. The caller owns the
lifecycle (`aclose`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import structlog

from worker.upstream.base import DownloadStream, PollResult, SubmitRequest, SubmitResult
from worker.upstream.errors import Body, PermanentUpstreamError, TransientUpstreamError
from worker.upstream.gemini.errors import POLICY
from worker.upstream.gemini.protocol import (
    inline_index,
    inline_video,
    parse_poll_answer,
    parse_submit_answer,
    submit_payload,
    usable_name,
)
from worker.upstream.http_client import CHUNK_SIZE, HttpClient
from worker.upstream.outcomes import Operation

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "/v1beta"
KEY_HEADER = "x-goog-api-key"

_log = structlog.get_logger(__name__)


class GeminiClient(HttpClient):
    """`Upstream` implementation for the Gemini API (and the simulator's Gemini side).

    `base_url` is the API's origin (``https://generativelanguage.googleapis.com``), with
    or without the ``/v1beta`` version path.
    """

    provider = "gemini"
    policy = POLICY

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | None = None,
        download_timeout: httpx.Timeout | None = None,
        limits: httpx.Limits | None = None,
        chunk_size: int = CHUNK_SIZE,
        max_answer_bytes: int | None = None,
    ) -> None:
        super().__init__(
            transport=transport,
            timeout=timeout,
            download_timeout=download_timeout,
            limits=limits,
            chunk_size=chunk_size,
            max_answer_bytes=max_answer_bytes,
        )
        root = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self._root = root if root.endswith(API_VERSION) else root + API_VERSION
        self._origin = _origin(self._root)
        self._api_key = api_key
        self._headers = {KEY_HEADER: api_key} if api_key else {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={self._root!r})"

    async def submit(self, req: SubmitRequest) -> SubmitResult:
        url = f"{self._root}/models/{quote(req.model, safe='')}:predictLongRunning"
        status, body = await self._call("submit", "POST", url, json=submit_payload(req))
        result = parse_submit_answer(status, body)
        _log.info("upstream.submitted", task_id=result.task_id, model=req.model)
        return result

    async def poll(self, task_id: str) -> PollResult:
        url = self._operation_url(task_id)
        status, body = await self._call("poll", "GET", url, task_id=task_id)
        return parse_poll_answer(status, body, url)

    async def check(self) -> None:
        """List one model: a 200 proves the key is accepted, and creates nothing.

        A refused key raises `OperatorProblemError`; anything else as a poll's would."""
        await self._call("check", "GET", f"{self._root}/models", params={"pageSize": "1"})

    @asynccontextmanager
    async def download(self, url: str) -> AsyncIterator[DownloadStream]:
        """Stream a finished video: the sample's URI with the key (redirects followed, the
        key only to the API's origin), or a video the operation carried inline."""
        index = inline_index(url)
        if index is not None:
            async with self._inline(url, index) as stream:
                yield stream
            return
        started = time.perf_counter()
        response = await self._follow(url, started)
        _log.info("upstream.response", op="download", status=response.status_code)
        async with self._stream(response, started) as stream:
            yield stream

    def _download_headers(self, url: str) -> dict[str, str]:
        """The key goes only to the API's own origin: a redirect to a CDN gets none."""
        headers = super()._download_headers(url)
        if self._api_key and _origin(url) == self._origin:
            headers[KEY_HEADER] = self._api_key
        return headers

    @asynccontextmanager
    async def _inline(self, url: str, index: int) -> AsyncIterator[DownloadStream]:
        """Read the operation again and serve the video it carries inline (the poll kept
        only a note of it)."""
        status, body = await self._call("download", "GET", url.split("#")[0])
        video = inline_video(body, index)
        if video is None:
            raise TransientUpstreamError(
                "inline_video_missing",
                f"the operation no longer carries inline video {index}",
                status=status,
            )

        async def chunks() -> AsyncIterator[bytes]:
            for at in range(0, len(video), self._chunk_size):
                yield video[at : at + self._chunk_size]

        yield DownloadStream("video/mp4", len(video), chunks())

    async def _call(
        self,
        op: Operation,
        method: str,
        url: str,
        *,
        task_id: str | None = None,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Body]:
        """Send one API request with the key; the status and parsed body of a 2xx."""
        log = _log.bind(op=op, task_id=task_id, provider=self.provider)
        return await self._send(
            op, method, url, log=log, headers=self._headers, json=json, params=params
        )

    def _operation_url(self, name: str) -> str:
        name = name.strip()
        if not usable_name(name):
            raise PermanentUpstreamError("invalid_task_id", f"not an operation name: {name!r}")
        return f"{self._root}/{quote(name, safe='/:@-._~')}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port
