"""One HTTP attempt of a webhook delivery, as the attempt log records it. The SSRF-safe
POST itself is ``core.egress.post``: no redirects followed, one deadline for the whole
attempt, the target checked again at every attempt."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import structlog

from core import egress
from core.retry_after import parse_retry_after

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    latency_ms: int
    error: str | None = None
    retry_after: float | None = None
    # The target is not allowed (any more): the delivery fails now, no retry can change it.
    refused: bool = False

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    policy: egress.Policy,
    max_seconds: float,
) -> Attempt:
    """One attempt; never raises for the receiver's sake. ``error`` is shown to the
    tenant, so a refusal reads :data:`core.egress.REFUSED` whatever its reason (logged)."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        reply = await egress.post(
            client, url, headers, body, policy=policy, max_seconds=max_seconds
        )
    except egress.UnsafeTarget as exc:
        log.warning("webhook_target_refused", reason=exc.reason)
        return Attempt(None, took(), str(exc), refused=True)
    except egress.EgressError as exc:
        return Attempt(None, took(), str(exc))
    retry_after = None
    if reply.status_code in (429, 503):
        retry_after = parse_retry_after(reply.headers.get("retry-after"))
    return Attempt(reply.status_code, took(), None, retry_after)
