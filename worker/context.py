"""What a worker process shares between jobs, built in ``on_startup``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from core.config_store import ConfigStore
from core.storage import Storage
from schemas.config import RuntimeConfig
from schemas.settings import Settings
from worker.upstream import Upstream, make_upstream


@dataclass
class WorkerContext:
    settings: Settings
    engine: AsyncEngine
    config: ConfigStore
    storage: Storage
    redis: ArqRedis
    webhooks: httpx.AsyncClient
    _upstreams: dict[tuple[str, str, str], Upstream] = field(default_factory=dict)

    async def upstream(self, config: RuntimeConfig) -> Upstream:
        """The client for the configured upstream; rebuilt when the config changes."""
        key = (config.upstream_kind, config.upstream_base_url, config.upstream_api_key)
        client = self._upstreams.get(key)
        if client is None:
            for old in self._upstreams.values():
                await old.aclose()
            self._upstreams.clear()
            client = make_upstream(
                config.upstream_kind,
                config.upstream_base_url,
                self.config.upstream_key(config),
                read_timeout=self.settings.upstream_timeout_seconds,
            )
            self._upstreams[key] = client
        return client

    async def aclose(self) -> None:
        for client in self._upstreams.values():
            await client.aclose()
        await self.webhooks.aclose()
        await self.storage.close()
        await self.engine.dispose()


def wctx(ctx: dict[str, Any]) -> WorkerContext:
    context: WorkerContext = ctx["app"]
    return context
