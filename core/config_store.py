"""Runtime configuration in the database, cached briefly so changes reach every process
within ``ttl`` seconds without a restart."""

from __future__ import annotations

import time

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import insert_ignoring_conflicts
from core.secrets import SecretBox
from core.tables import runtime_config
from schemas.config import RuntimeConfig, RuntimeConfigPatch
from schemas.settings import Settings
from schemas.tables import utcnow


class ConfigStore:
    def __init__(self, engine: AsyncEngine, box: SecretBox, *, ttl: float = 1.0) -> None:
        self._engine = engine
        # The one box of the process: webhook secrets use it too.
        self.box = box
        self._ttl = ttl
        self._cached: RuntimeConfig | None = None
        self._loaded_at = 0.0

    async def seed(self, settings: Settings) -> None:
        """Write the initial row from the environment unless one exists."""
        initial = RuntimeConfig(
            upstream_kind=settings.upstream_kind,
            upstream_base_url=settings.upstream_base_url,
            upstream_api_key=self.box.encrypt(settings.upstream_api_key),
        )
        values = {
            "id": 1,
            "version": 1,
            "document": initial.model_dump(mode="json"),
            "updated_at": utcnow(),
        }
        async with self._engine.begin() as conn:
            # Replicas start together: the first insert wins, the others change nothing.
            await conn.execute(insert_ignoring_conflicts(conn, runtime_config, values))

    async def get(self) -> RuntimeConfig:
        now = time.monotonic()
        if self._cached is None or now - self._loaded_at > self._ttl:
            async with self._engine.connect() as conn:
                row = (await conn.execute(select(runtime_config.c.document))).first()
            self._cached = RuntimeConfig.model_validate(row.document) if row else RuntimeConfig()
            self._loaded_at = now
        return self._cached

    async def update(self, patch: RuntimeConfigPatch) -> RuntimeConfig:
        changes = patch.model_dump(exclude_unset=True)
        if "upstream_api_key" in changes:
            changes["upstream_api_key"] = self.box.encrypt(changes["upstream_api_key"] or "")
        async with self._engine.begin() as conn:
            row = (await conn.execute(select(runtime_config.c.document).with_for_update())).first()
            current = RuntimeConfig.model_validate(row.document) if row else RuntimeConfig()
            merged = RuntimeConfig.model_validate({**current.model_dump(), **changes})
            await conn.execute(
                update(runtime_config)
                .where(runtime_config.c.id == 1)
                .values(
                    document=merged.model_dump(mode="json"),
                    version=runtime_config.c.version + 1,
                    updated_at=utcnow(),
                )
            )
        self._cached, self._loaded_at = merged, time.monotonic()
        return merged

    def upstream_key(self, config: RuntimeConfig) -> str:
        return self.box.decrypt(config.upstream_api_key)
