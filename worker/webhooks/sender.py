"""One HTTP attempt of a webhook delivery, as the attempt log records it. The SSRF-safe
POST itself is ``core.egress.post``; the webhook client follows no redirects and bounds
the time."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from core import egress
from core.retry_after import parse_retry_after


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    latency_ms: int
    error: str | None = None
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    allow_private: bool,
) -> Attempt:
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        response = await egress.post(client, url, headers, body, allow_private=allow_private)
    except egress.UnsafeTarget as exc:
        return Attempt(None, took(), f"refused: {exc}")
    except httpx.HTTPError as exc:
        return Attempt(None, took(), f"{type(exc).__name__}: {exc}"[:500])
    retry_after = None
    if response.status_code in (429, 503):
        retry_after = parse_retry_after(response.headers.get("retry-after"))
    return Attempt(response.status_code, took(), None, retry_after)
