"""Google's Gemini API, directly: Veo through ``predictLongRunning`` and its operations
(docs/upstreams.md, "Google's Gemini API"). The simulator speaks it too, under the same
kind, at its own base URL."""

from __future__ import annotations

import httpx

from worker.upstream.base import Upstream
from worker.upstream.gemini.client import DEFAULT_BASE_URL, GeminiClient
from worker.upstream.registry import ClientOptions, Provider

__all__ = ["DEFAULT_BASE_URL", "PROVIDERS", "GeminiClient"]


def build(base_url: str, api_key: str, options: ClientOptions) -> Upstream:
    read = options.read_timeout
    return GeminiClient(
        base_url, api_key, timeout=httpx.Timeout(read, connect=5.0) if read else None
    )


PROVIDERS = (
    Provider(
        kind="gemini",
        title="the direct Gemini API",
        build=build,
        upstream_action="gemini-predict-long-running",
        calls_back=False,
        inline_images=True,
    ),
)
