"""HTTP client for the aggregator gateway (new-api / one-api "google" route).

The wire format lives in `protocol`, the error policy in `errors`; this module only moves
bytes, measures latency and logs. The caller owns the lifecycle (`aclose`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from worker.upstream.base import DownloadStream, PollResult, SubmitRequest, SubmitResult
from worker.upstream.errors import Body, PermanentUpstreamError, TaskNotFoundError
from worker.upstream.gateway.errors import POLICY
from worker.upstream.gateway.protocol import (
    parse_poll_answer,
    parse_submit_answer,
    submit_payload,
)
from worker.upstream.http import elapsed_ms
from worker.upstream.http_client import CHUNK_SIZE, HttpClient
from worker.upstream.outcomes import Operation

SUBMIT_PATH = "/google/v1/models/veo/videos"
TASK_PATH = "/google/v1/tasks/"
# Task ids the gateway cannot know (a fresh uuid each): `task_not_exist` proves the key works.
CHECK_TASK_PREFIX = "gv-config-test-"

_log = structlog.get_logger(__name__)


class GatewayClient(HttpClient):
    """`Upstream` implementation for the gateway protocol (and the built-in simulator)."""

    # The label of its calls in ``google_video_upstream_*`` (the simulator speaks it too).
    provider = "gateway"
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
        if not base_url:
            raise ValueError("base_url is required")
        super().__init__(
            transport=transport,
            timeout=timeout,
            download_timeout=download_timeout,
            limits=limits,
            chunk_size=chunk_size,
            max_answer_bytes=max_answer_bytes,
        )
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        # No key (e.g. cleared by a base URL change): no header, and the gateway's 401 says
        # so, instead of an unsendable "Bearer " failing the request here.
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base_url!r})"

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
        started = time.perf_counter()
        response = await self._follow(url, started)
        _log.info(
            "upstream.response",
            op="download",
            status=response.status_code,
            latency_ms=elapsed_ms(started),
        )
        async with self._stream(response, started) as stream:
            yield stream

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
        return await self._send(op, method, url, log=log, headers=self._headers, json=json)

    def _task_url(self, task_id: str) -> str:
        return self._base_url + TASK_PATH + quote(task_id.strip(), safe="")
