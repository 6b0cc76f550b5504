"""Google's Gemini API, directly: Veo through ``predictLongRunning`` and its operations
(docs/upstreams.md, "Google's Gemini API"). The simulator speaks it too, under the same
kind, at its own base URL."""

from __future__ import annotations

from worker.upstream.gemini.client import DEFAULT_BASE_URL, GeminiClient
from worker.upstream.http_client import factory
from worker.upstream.registry import Provider

__all__ = ["DEFAULT_BASE_URL", "PROVIDERS", "GeminiClient"]


PROVIDERS = (
    Provider(
        kind="gemini",
        title="the direct Gemini API",
        build=factory(GeminiClient, inline_video=True),
        upstream_action="gemini-predict-long-running",
        calls_back=False,
        inline_images=True,
    ),
)
