"""The Starlette application and its lifespan (clients built here, never at import)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq import create_pool
from arq.connections import RedisSettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from core.bootstrap import prepare, storage_from
from core.db import make_engine
from schemas.settings import Settings
from service.context import Context, KeyCache
from service.errors import HANDLERS
from service.request_id import RequestIdMiddleware
from service.routes import (
    admin,
    callback,
    credits,
    events,
    health,
    models,
    videos,
    webhook_endpoints,
)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
        queue = await create_pool(RedisSettings.from_dsn(settings.redis_url))
        storage = storage_from(settings)
        try:
            config = await prepare(settings, engine)
            app.state.ctx = Context(
                settings=settings,
                engine=engine,
                config=config,
                queue=queue,
                storage=storage,
                keys=KeyCache(ttl=settings.api_key_cache_seconds),
            )
            yield
        finally:
            await queue.aclose()
            await storage.close()
            await engine.dispose()

    routes: list[BaseRoute] = [
        *health.routes,
        *videos.routes,
        *models.routes,
        *credits.routes,
        *admin.routes,
        *webhook_endpoints.routes,
        *events.routes,
        *callback.routes,
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=HANDLERS,
        middleware=[Middleware(RequestIdMiddleware)],
    )
