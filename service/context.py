"""What the API process shares between requests, built once in the app lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from core.apikeys import Principal
from core.config_store import ConfigStore
from core.storage import Storage
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


@dataclass
class Context:
    settings: Settings
    engine: AsyncEngine
    config: ConfigStore
    queue: ArqRedis
    storage: Storage
    keys: KeyCache
    limits: RateLimits


def ctx(request: Request) -> Context:
    context: Context = request.app.state.ctx
    return context
