"""The Starlette application and its lifespan (clients built here, never at import)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata

from starlette.applications import Starlette
from starlette.middleware import Middleware

from core.bootstrap import prepare, storage_from
from core.db import make_engine
from core.queue_codec import queue_client
from schemas.settings import Settings
from service import console, contract
from service.access_log import AccessLog
from service.body_deadline import BodyDeadline
from service.context import Context, KeyCache, UpstreamCheck
from service.contract import Operation
from service.errors import HANDLERS, LastResort
from service.metrics import HttpMetrics, TaskGauge
from service.openapi import document
from service.ratelimit import RateLimits
from service.request_id import RequestIdMiddleware
from service.routes import (
    admin,
    admin_keys,
    callback,
    credits,
    docs,
    events,
    health,
    metrics,
    models,
    uploads,
    videos,
    webhook_endpoints,
)

OPERATIONS: list[Operation] = [
    *health.operations,
    *videos.operations,
    *uploads.operations,
    *models.operations,
    *credits.operations,
    *admin.operations,
    *admin_keys.operations,
    *webhook_endpoints.operations,
    *events.operations,
    *callback.operations,
    *docs.operations,
    *metrics.operations,
]
TITLE = "google-video"
REDIS_CONNECT_SECONDS = 1.0
# A hung Redis costs a request at most this per command: enqueues are after the commit
# (the reconciler catches up), callbacks and readiness report it.
REDIS_COMMAND_SECONDS = 2.0


def create_app(
    settings: Settings | None = None, *, upstream_check: UpstreamCheck | None = None
) -> Starlette:
    """The API. `upstream_check` runs ``POST /v1/admin/config/test`` (the command line
    passes the worker's, `worker.upstream.check.check_connection`; without it that
    endpoint answers 503)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
        # Connected on first use, not checked here: the API starts and serves (degraded,
        # see /readyz) while Redis is down; creates stay durable in the database.
        queue = queue_client(
            settings.redis_url,
            connect_timeout=REDIS_CONNECT_SECONDS,
            timeout=REDIS_COMMAND_SECONDS,
        )
        storage = storage_from(settings)
        limits = RateLimits(settings.redis_url)
        try:
            config = await prepare(settings, engine)
            app.state.ctx = Context(
                settings=settings,
                engine=engine,
                config=config,
                queue=queue,
                storage=storage,
                keys=KeyCache(ttl=settings.api_key_cache_seconds),
                limits=limits,
                upstream_check=upstream_check,
            )
            app.state.task_gauge = TaskGauge(engine)
            yield
        finally:
            await queue.aclose()
            await limits.close()
            await storage.close()
            await engine.dispose()

    app = Starlette(
        routes=[*contract.routes(OPERATIONS), *console.routes()],
        lifespan=lifespan,
        exception_handlers=HANDLERS,
        # Outermost first: every answer (a 500 too) is counted, carries the request id and
        # has its access-log line.
        middleware=[
            Middleware(HttpMetrics),
            Middleware(RequestIdMiddleware),
            Middleware(AccessLog),
            Middleware(LastResort),
            # Inside LastResort: its 408 is a problem raised where the handler reads.
            Middleware(BodyDeadline, seconds=settings.body_timeout_seconds),
        ],
    )
    # "/v1/videos/" is not a path of ours: a 404 problem, not a redirect built from the
    # caller's Host header.
    app.router.redirect_slashes = False
    app.state.openapi = document(OPERATIONS, title=TITLE, version=_version())
    return app


def _version() -> str:
    try:
        return metadata.version("google-video")
    except metadata.PackageNotFoundError:
        return "0"
