"""What a worker process shares between jobs, built in ``on_startup``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from core import egress
from core.config_store import ConfigStore
from core.storage import Storage
from schemas.settings import Settings
from worker.alerts import OperatorAlerts
from worker.budget import UpstreamBudget
from worker.callbacks import CallbackEvidence
from worker.durations import LearnedDurations
from worker.upstream.pool import UpstreamPool
from worker.upstream.registry import ClientOptions


@dataclass
class WorkerContext:
    settings: Settings
    engine: AsyncEngine
    config: ConfigStore
    storage: Storage
    redis: ArqRedis
    webhooks: httpx.AsyncClient
    # Jobs lease clients: `async with context.upstreams.lease(config, spec) as upstream`.
    upstreams: UpstreamPool = field(init=False)
    # The upstream refused the key or account: the latest problem, for health and metrics.
    alerts: OperatorAlerts = field(init=False)
    # Whether upstream callbacks reach the API (worker/callbacks.py): polls slow only then.
    callbacks: CallbackEvidence = field(init=False)
    # Egress for the https image inputs a provider needs as bytes (core.egress.fetch).
    images: httpx.AsyncClient = field(init=False)
    # How long each (provider kind, model) takes upstream, shared through Redis: the poll
    # schedule and the progress of providers that report none.
    durations: LearnedDurations = field(init=False, default_factory=LearnedDurations)

    def __post_init__(self) -> None:
        self.images = egress.client(
            self.settings.image_fetch_timeout_seconds, ca_file=self.settings.egress_ca_file
        )
        self.alerts = OperatorAlerts(self.settings.operator_alert_interval_seconds)
        self.callbacks = CallbackEvidence()
        self.upstreams = UpstreamPool(
            self.config.access,
            ClientOptions(
                read_timeout=self.settings.upstream_timeout_seconds,
                max_answer_bytes=self.settings.upstream_answer_max_bytes,
                max_plain_answer_bytes=self.settings.upstream_plain_answer_max_bytes,
            ),
            UpstreamBudget(self.redis, self.settings),
        )

    async def aclose(self) -> None:
        await self.upstreams.aclose()
        await self.webhooks.aclose()
        await self.images.aclose()
        await self.storage.close()
        await self.engine.dispose()


def wctx(ctx: dict[str, Any]) -> WorkerContext:
    context: WorkerContext = ctx["app"]
    return context
