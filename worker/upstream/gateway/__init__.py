"""The aggregator gateway (new-api / one-api "google" route); the built-in simulator
speaks the same protocol, so kind "simulator" is served here too."""

from __future__ import annotations

from worker.upstream.gateway.client import GatewayClient
from worker.upstream.http_client import factory
from worker.upstream.registry import Provider

__all__ = ["PROVIDERS", "GatewayClient"]


PROVIDERS = (
    Provider(
        kind="gateway",
        title="the aggregator gateway",
        build=factory(GatewayClient, inline_video=False),
        upstream_action="google-videos",
        calls_back=True,
        aliases=("simulator",),
    ),
)
