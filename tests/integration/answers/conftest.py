"""Fixtures of this folder: a hostile server on 127.0.0.1 (``upstream``), a provider the
real gateway client serves (``provider``), a client with credits and a model routed to it
(``acme``), and a real worker context with small caps (``worker``), on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings

from core.queue_codec import ARQ_CODEC
from schemas.settings import Settings
from tests.integration.answers.hostile import (
    GRANT,
    KIND,
    MODEL,
    PRICE,
    WORKER_MAX_BODY,
    WORKER_MAX_VIDEO,
    Ctx,
)
from tests.integration.conftest import BACKENDS
from tests.listener import Listener, listening
from worker.lifecycle import on_shutdown, on_startup
from worker.upstream import registry
from worker.upstream.gateway import GatewayClient
from worker.upstream.http_client import factory
from worker.upstream.registry import Provider


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def upstream() -> AsyncIterator[Listener]:
    async with listening() as listener:
        yield listener


@pytest.fixture
def provider() -> Iterator[None]:
    """A provider served by the real gateway client, built as the worker builds it."""
    served = Provider(
        kind=KIND,
        title="a gateway that answers too much",
        build=factory(GatewayClient, inline_video=False),
        upstream_action="google-videos",
        calls_back=False,
    )
    registry.register(served)
    yield
    registry.unregister(served)


@pytest.fixture
async def acme(admin, client_for, grant, upstream, provider) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    models = (await admin.get("/v1/admin/config")).json()["models"]
    entry = {"id": MODEL, "provider": KIND, "provider_model": "veo3", "price": PRICE}
    access = {KIND: {"base_url": upstream.url("/"), "api_key": "sk-hostile"}}
    put = await admin.put(
        "/v1/admin/config", json={"models": [*models, entry], "providers": access}
    )
    assert put.status_code == 200, put.text
    client: httpx.AsyncClient = await client_for("acme")
    await grant("acme", "acme", GRANT)
    return client


@pytest.fixture
async def worker(settings: Settings, redis_url: str) -> AsyncIterator[Ctx]:
    """A real worker context: its gateway clients read at most the cap `WORKER_MAX_BODY`
    gives (a Gemini client the larger one of `WORKER_MAX_VIDEO`), each API call within 1 s."""
    redis = await create_pool(RedisSettings.from_dsn(redis_url), **ARQ_CODEC)
    changed = {
        "max_video_bytes": WORKER_MAX_VIDEO,
        "max_body_bytes": WORKER_MAX_BODY,
        "upstream_timeout_seconds": 1.0,
    }
    ctx: Ctx = {"settings": settings.model_copy(update=changed), "redis": redis}
    await on_startup(ctx)
    yield ctx
    await on_shutdown(ctx)
    await redis.aclose()
