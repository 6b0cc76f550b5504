"""Worker start-up and shut-down: shared clients live in ``ctx['app']``."""

from __future__ import annotations

from typing import Any

from core import egress
from core.bootstrap import prepare, storage_from
from core.db import make_engine
from schemas.settings import Settings
from worker.context import WorkerContext


async def on_startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    try:
        config = await prepare(settings, engine)
    except BaseException:
        await engine.dispose()  # the supervisor retries the start-up while the database is down
        raise
    ctx["app"] = WorkerContext(
        settings=settings,
        engine=engine,
        config=config,
        storage=storage_from(settings),
        redis=ctx["redis"],
        webhooks=egress.client(settings.webhook_timeout_seconds, ca_file=settings.egress_ca_file),
    )


async def on_shutdown(ctx: dict[str, Any]) -> None:
    context: WorkerContext | None = ctx.get("app")
    if context is not None:
        await context.aclose()
