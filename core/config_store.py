"""Runtime configuration in the database, cached briefly so changes reach every process
within ``ttl`` seconds without a restart."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import autocommit
from core.repo import config as repo
from core.secrets import MASK, SecretBox, UnreadableSecretError
from schemas.catalogue import write_context
from schemas.config import (
    ProviderAccess,
    ProviderAccessPatch,
    RuntimeConfig,
    RuntimeConfigPatch,
    UpstreamCandidate,
)
from schemas.settings import Settings


class ConfigStore:
    def __init__(self, engine: AsyncEngine, box: SecretBox, *, ttl: float = 1.0) -> None:
        self._engine = engine
        # The one box of the process: webhook secrets use it too.
        self.box = box
        self._ttl = ttl
        self._cached: RuntimeConfig | None = None
        self._loaded_at = 0.0
        self._reading = asyncio.Lock()
        # What this process seeded: read if the row is ever missing (a restore, a wiped
        # table), so the environment's upstream is used rather than the built-in defaults.
        self._fallback = RuntimeConfig()

    async def seed(self, settings: Settings) -> None:
        """Write the initial row from the environment unless one exists."""
        providers = {}
        if settings.upstream_kind != "gemini" and (
            settings.gemini_base_url or settings.gemini_api_key
        ):
            providers["gemini"] = ProviderAccess(
                base_url=settings.gemini_base_url,
                api_key=self.box.encrypt(settings.gemini_api_key),
            )
        initial = RuntimeConfig(
            upstream_kind=settings.upstream_kind,
            upstream_base_url=settings.upstream_base_url,
            upstream_api_key=self.box.encrypt(settings.upstream_api_key),
            providers=providers,
        )
        self._fallback = initial
        async with self._engine.begin() as conn:
            await repo.seed(conn, initial.model_dump(mode="json"))

    async def get(self) -> RuntimeConfig:
        """The config, read again at most once per ``ttl`` seconds: requests that find it
        stale together wait for one read (not one each, a stampede under load)."""
        cached = self._cached
        if cached is not None and time.monotonic() - self._loaded_at <= self._ttl:
            return cached
        async with self._reading:
            now = time.monotonic()
            if self._cached is None or now - self._loaded_at > self._ttl:
                async with autocommit(self._engine) as conn:  # one statement: no BEGIN
                    document = await repo.document(conn)
                self._cached = (
                    RuntimeConfig.model_validate(document) if document else self._fallback
                )
                self._loaded_at = now
            return self._cached

    async def update(self, patch: RuntimeConfigPatch) -> RuntimeConfig:
        """Merge ``patch`` into the stored document; raises pydantic's ``ValidationError``
        when the result fails the write checks (nothing is stored then).

        A new ``upstream_base_url`` or ``upstream_kind`` clears the stored upstream key
        unless the same patch gives one: the key was meant for the old destination. The
        masked key a ``GET`` shows (``****…``) is not a key: sent back, it counts as left out.
        """
        changes = _given(patch)
        if "upstream_api_key" in changes:
            changes["upstream_api_key"] = self.box.encrypt(changes["upstream_api_key"])
        access = patch.providers or {}
        changes.pop("providers", None)
        async with self._engine.begin() as conn:
            stored = await repo.document(conn, for_update=True)
            current = RuntimeConfig.model_validate(stored) if stored else self._fallback
            if "upstream_api_key" not in changes and _moves_upstream(current, changes):
                changes["upstream_api_key"] = ""
            if access:
                changes["providers"] = self._merged_providers(current, access)
            merged = RuntimeConfig.model_validate(
                {**current.model_dump(), **changes}, context=write_context(current.models)
            )
            if stored is None:  # the row is gone: this write brings it back
                await repo.seed(conn, merged.model_dump(mode="json"))
            else:
                await repo.replace(conn, merged.model_dump(mode="json"))
        self._cached, self._loaded_at = merged, time.monotonic()
        return merged

    def _merged_providers(
        self, current: RuntimeConfig, patch: dict[str, ProviderAccessPatch]
    ) -> dict[str, Any]:
        """`current.providers` with each given provider's fields changed, under the rules of
        the upstream key: a new base URL without a key clears the stored one."""
        merged = {kind: access.model_dump() for kind, access in current.providers.items()}
        for kind, given in patch.items():
            before = current.providers.get(kind, ProviderAccess())
            changes = given.model_dump(exclude_unset=True)
            if str(changes.get("api_key", "")).startswith(MASK):
                del changes["api_key"]
            if "api_key" in changes:
                changes["api_key"] = self.box.encrypt(changes["api_key"])
            elif changes.get("base_url", before.base_url) != before.base_url:
                changes["api_key"] = ""
            merged[kind] = {**before.model_dump(), **changes}
        return merged

    def access(self, config: RuntimeConfig, kind: str) -> tuple[str, str]:
        """``(base URL, plain key)`` of provider `kind` under `config`: the configured
        upstream's for its kind, else ``providers.<kind>``; ``("", "")`` when nothing is
        stored (the provider's own default URL, no key)."""
        if kind == config.upstream_kind:
            return config.upstream_base_url, self.upstream_key(config)
        stored = config.providers.get(kind)
        if stored is None:
            return "", ""
        return stored.base_url, self.box.decrypt(stored.api_key)

    async def candidate(self, candidate: UpstreamCandidate) -> tuple[str, str, str | None]:
        """The upstream ``(kind, base_url, plain key)`` that `candidate` names, nothing stored;
        the key is None when it is the stored one and this SECRET_KEY cannot decrypt it.

        Left-out fields come from the stored configuration, under the rules of `update`: a
        masked key counts as left out, and a new destination without a key has none. With
        `candidate.provider` they come from that provider's stored access instead.
        """
        changes = _given(candidate)
        current = await self.get()
        key: str | None
        if candidate.provider is not None:
            kind = candidate.provider
            try:
                base_url, key = self.access(current, kind)
            except UnreadableSecretError:
                base_url, key = self._base_url(current, kind), None
            if "upstream_api_key" in changes:
                key = str(changes["upstream_api_key"])
            elif changes.get("upstream_base_url", base_url) != base_url:
                key = ""
            return kind, str(changes.get("upstream_base_url", base_url)), key
        if "upstream_api_key" in changes:
            key = str(changes["upstream_api_key"])
        elif _moves_upstream(current, changes):
            key = ""
        else:
            try:
                key = self.upstream_key(current)
            except UnreadableSecretError:
                key = None
        kind = str(changes.get("upstream_kind", current.upstream_kind))
        base_url = str(changes.get("upstream_base_url", current.upstream_base_url))
        return kind, base_url, key

    def upstream_key(self, config: RuntimeConfig) -> str:
        """The plain upstream key; raises `UnreadableSecretError` as `SecretBox.decrypt`."""
        return self.box.decrypt(config.upstream_api_key)

    @staticmethod
    def _base_url(config: RuntimeConfig, kind: str) -> str:
        if kind == config.upstream_kind:
            return config.upstream_base_url
        stored = config.providers.get(kind)
        return "" if stored is None else stored.base_url


def _given(fields: BaseModel) -> dict[str, Any]:
    """The fields a request set, the masked key a read shows (``****…``) counting as left
    out: it is not a key."""
    changes = fields.model_dump(exclude_unset=True)
    if str(changes.get("upstream_api_key", "")).startswith(MASK):
        del changes["upstream_api_key"]
    return changes


def _moves_upstream(current: RuntimeConfig, changes: dict[str, Any]) -> bool:
    """True if ``changes`` point the upstream key at another destination."""
    return any(
        name in changes and changes[name] != getattr(current, name)
        for name in ("upstream_base_url", "upstream_kind")
    )
