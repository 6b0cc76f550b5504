"""The aggregator gateway (new-api / one-api "google" route); the built-in simulator
speaks the same protocol, so kind "simulator" is served here too."""

from __future__ import annotations

import httpx

from worker.upstream.base import Upstream
from worker.upstream.gateway.client import GatewayClient
from worker.upstream.registry import ClientOptions, Provider

__all__ = ["PROVIDERS", "GatewayClient"]


def build(base_url: str, api_key: str, options: ClientOptions) -> Upstream:
    read = options.read_timeout
    return GatewayClient(
        base_url, api_key, timeout=httpx.Timeout(read, connect=5.0) if read else None
    )


PROVIDERS = (
    Provider(
        kind="gateway",
        title="the aggregator gateway",
        build=build,
        upstream_action="google-videos",
        calls_back=True,
        aliases=("simulator",),
    ),
)
