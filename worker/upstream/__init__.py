"""Clients for the video providers: one protocol, one error tree, one factory."""

from __future__ import annotations

import httpx

from worker.upstream.base import (
    DownloadStream,
    PollResult,
    SubmitRequest,
    SubmitResult,
    Upstream,
    UpstreamState,
)
from worker.upstream.errors import (
    AmbiguousSubmitError,
    PermanentUpstreamError,
    TaskNotFoundError,
    TransientUpstreamError,
    UpstreamError,
)
from worker.upstream.gateway import GatewayClient

__all__ = [
    "AmbiguousSubmitError",
    "DownloadStream",
    "GatewayClient",
    "PermanentUpstreamError",
    "PollResult",
    "SubmitRequest",
    "SubmitResult",
    "TaskNotFoundError",
    "TransientUpstreamError",
    "Upstream",
    "UpstreamError",
    "UpstreamState",
    "make_upstream",
]


def make_upstream(
    kind: str, base_url: str, api_key: str, *, read_timeout: float | None = None
) -> Upstream:
    """Build the client for `kind`; the simulator speaks the gateway protocol."""
    if kind in ("gateway", "simulator"):
        timeout = httpx.Timeout(read_timeout, connect=5.0) if read_timeout else None
        return GatewayClient(base_url, api_key, timeout=timeout)
    if kind == "gemini":
        raise NotImplementedError("gemini upstream is not implemented yet")
    raise ValueError(f"unknown upstream kind: {kind!r}")
