"""HTTP client for the aggregator gateway (new-api / one-api "google" route).

The wire format lives in `protocol`, the error policy in `errors`; this module only moves
bytes, measures latency and logs. The caller owns the lifecycle (`aclose`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from worker.upstream.base import DownloadStream, PollResult, SubmitRequest, SubmitResult
from worker.upstream.errors import Body, PermanentUpstreamError, TaskNotFoundError
from worker.upstream.gateway.errors import error_from_response
from worker.upstream.gateway.protocol import (
    parse_poll_answer,
    parse_submit_answer,
    submit_payload,
)
from worker.upstream.http import content_length, elapsed_ms, read_prefix
from worker.upstream.metrics import observe
from worker.upstream.outcomes import (
    LOCAL_FAILURES,
    Operation,
    error_from_exception,
    parse_body,
)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DEFAULT_DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
DEFAULT_LIMITS = httpx.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0
)
CHUNK_SIZE = 1024 * 1024
SUBMIT_PATH = "/google/v1/models/veo/videos"
TASK_PATH = "/google/v1/tasks/"
# Task ids the gateway cannot know (a fresh uuid each): `task_not_exist` proves the key works.
CHECK_TASK_PREFIX = "gv-config-test-"
_USER_AGENT = "google-video/0.1"
# The label of this client's calls in ``google_video_upstream_*`` (the simulator speaks it too).
PROVIDER = "gateway"

_log = structlog.get_logger(__name__)


class GatewayClient:
    """`Upstream` implementation for the gateway protocol (and the built-in simulator).

    Read timeouts bound each network read, not a whole download: callers that need a
    total deadline wrap the call in `asyncio.timeout`.
    """

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
    ) -> None:
        if not base_url:
            raise ValueError("base_url is required")
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._download_timeout = download_timeout or DEFAULT_DOWNLOAD_TIMEOUT
        self._chunk_size = chunk_size
        # No default Authorization header: downloads go to a CDN and must not carry it.
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=timeout or DEFAULT_TIMEOUT,
            limits=limits or DEFAULT_LIMITS,
            headers={"User-Agent": _USER_AGENT},
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base_url!r})"

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def submit(self, req: SubmitRequest) -> SubmitResult:
        url = self._base_url + SUBMIT_PATH
        status, body = await self._call("submit", "POST", url, json=submit_payload(req))
        result = parse_submit_answer(status, body)
        _log.info("upstream.submitted", upstream_task_id=result.task_id, model=req.model)
        return result

    async def poll(self, task_id: str) -> PollResult:
        if not task_id.strip():
            raise PermanentUpstreamError("invalid_task_id", "task id is empty")
        status, body = await self._call("poll", "GET", self._task_url(task_id), task_id=task_id)
        return parse_poll_answer(status, body)

    async def check(self) -> None:
        """Query a task that cannot exist: `task_not_exist` proves the key is accepted.

        401/403 raise `OperatorProblemError`; an answer describing a task raises
        `PermanentUpstreamError(code="unexpected_answer")`; other failures raise as a poll's
        do. Creates nothing and costs nothing.
        """
        task_id = f"{CHECK_TASK_PREFIX}{uuid.uuid4()}"
        try:
            status, body = await self._call(
                "check", "GET", self._task_url(task_id), task_id=task_id
            )
            parse_poll_answer(status, body)
        except TaskNotFoundError:
            return
        raise PermanentUpstreamError(
            "unexpected_answer",
            "The gateway described a task for an id that cannot exist.",
            status=status,
        )

    @asynccontextmanager
    async def download(self, url: str) -> AsyncIterator[DownloadStream]:
        """Stream a finished video from the CDN (redirects followed, no credentials)."""
        log = _log.bind(op="download")
        started = time.perf_counter()
        try:
            request = self._client.build_request(
                "GET", url, timeout=self._download_timeout, headers={"Accept-Encoding": "identity"}
            )
            response = await self._client.send(request, stream=True, follow_redirects=True)
        except (httpx.HTTPError, *LOCAL_FAILURES) as exc:
            error = error_from_exception(exc, "download")
            log.warning("upstream.transport_error", error_code=error.code, error=error.message)
            observe(PROVIDER, "download", started, error)
            raise error from exc
        try:
            log.info(
                "upstream.response", status=response.status_code, latency_ms=elapsed_ms(started)
            )
            if not response.is_success:
                content = await read_prefix(response)
                error = error_from_response(response, "download", content=content)
                observe(PROVIDER, "download", started, error)
                raise error
            observe(PROVIDER, "download", started, None)
            yield DownloadStream(
                content_type=response.headers.get("Content-Type", "application/octet-stream"),
                content_length=content_length(response.headers),
                chunks=self._chunks(response),
            )
        finally:
            await response.aclose()

    async def _chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes(self._chunk_size):
                yield chunk
        except httpx.HTTPError as exc:
            raise error_from_exception(exc, "download") from exc

    async def _call(
        self,
        op: Operation,
        method: str,
        url: str,
        *,
        task_id: str | None = None,
        json: dict[str, Any] | None = None,
    ) -> tuple[int, Body]:
        """Send one API request; return the status and parsed body of a 2xx answer."""
        # The gateway's id: ``task_id`` on a line is always ours (bound by the job).
        log = _log.bind(op=op, **({"upstream_task_id": task_id} if task_id else {}))
        # No key (e.g. cleared by a base URL change): no header, and the gateway's 401 says
        # so, instead of an unsendable "Bearer " failing the request here.
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        started = time.perf_counter()
        try:
            response = await self._client.request(method, url, json=json, headers=headers)
        except (httpx.HTTPError, *LOCAL_FAILURES) as exc:
            error = error_from_exception(exc, op)
            log.warning(
                "upstream.transport_error",
                error_code=error.code,
                error=error.message,
                latency_ms=elapsed_ms(started),
            )
            observe(PROVIDER, op, started, error)
            raise error from exc
        log_method = log.info if op == "submit" else log.debug
        log_method("upstream.response", status=response.status_code, latency_ms=elapsed_ms(started))
        if not response.is_success:
            error = error_from_response(response, op)
            log.warning("upstream.error", status=error.status, error_code=error.code)
            observe(PROVIDER, op, started, error)
            raise error
        observe(PROVIDER, op, started, None)
        return response.status_code, parse_body(response.content)

    def _task_url(self, task_id: str) -> str:
        return self._base_url + TASK_PATH + quote(task_id.strip(), safe="")
