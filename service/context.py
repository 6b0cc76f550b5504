"""What the API process shares between requests, built once in the app lifespan."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from core.apikeys import Principal
from core.config_store import ConfigStore
from core.storage import Storage
from schemas.config import ConnectionReport
from schemas.settings import Settings
from service.ratelimit import RateLimits


@dataclass
class KeyCache:
    """Short-lived memo of key hash → principal, so a request costs no key lookup."""

    ttl: float
    entries: dict[str, tuple[Principal | None, float]] = field(default_factory=dict)

    def get(self, key_hash: str, now: float) -> tuple[bool, Principal | None]:
        hit = self.entries.get(key_hash)
        if hit is None or hit[1] < now:
            return False, None
        return True, hit[0]

    def put(self, key_hash: str, principal: Principal | None, now: float) -> None:
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[key_hash] = (principal, now + self.ttl)

    def forget(self, key_id: str) -> None:
        """Drop the memo of a revoked key: this process refuses it at once (other
        replicas within ``ttl``)."""
        for key_hash, (principal, _) in list(self.entries.items()):
            if principal is not None and principal.key_id == key_id:
                del self.entries[key_hash]


class UpstreamCheck(Protocol):
    """Checks an upstream without creating a paid job (`worker.upstream.check`, handed to
    `create_app` by the command line: the API does not import the worker). Raises
    ValueError / NotImplementedError for a kind nothing serves."""

    def __call__(
        self, kind: str, base_url: str, api_key: str, *, seconds: float
    ) -> Awaitable[ConnectionReport]: ...


@dataclass
class Context:
    settings: Settings
    engine: AsyncEngine
    config: ConfigStore
    queue: ArqRedis
    storage: Storage
    keys: KeyCache
    limits: RateLimits
    # None: this app was built without one (a test's); the config test answers 503.
    upstream_check: UpstreamCheck | None = None


def ctx(request: Request) -> Context:
    context: Context = request.app.state.ctx
    return context
