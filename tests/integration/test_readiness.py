"""``/readyz`` (README, Operations): 503 only without the database, which makes a pod
useless; Redis or storage down is ``degraded`` (200, naming it) and creates still work,
durable in the database for the reconciler to enqueue. On PostgreSQL and SQLite."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from core.db import make_engine
from core.repo.tables import tasks
from core.storage.local import TMP_DIR
from schemas.settings import Settings
from service.app import create_app
from tests.integration.conftest import ADMIN_KEY, BACKENDS
from tests.services import free_port


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def anonymous(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_everything_up_is_ready(app: Starlette):
    async with anonymous(app) as anon:
        response = await anon.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "storage": "ok"},
        "degraded": [],
    }


@pytest.fixture
async def without_redis(settings: Settings) -> AsyncIterator[Starlette]:
    """The API started while nothing listens at its Redis address."""
    dead = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    app = create_app(dead)
    async with app.router.lifespan_context(app):
        yield app


async def test_redis_down_is_degraded_and_creates_are_durable(
    without_redis: Starlette, engine: Any, assert_ledger: Any
):
    async with anonymous(without_redis) as anon:
        ready = await anon.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "degraded" and body["degraded"] == ["redis"]
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"].startswith("error")

    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with anonymous(without_redis) as admin:
        granted = await admin.post(
            "/v1/credits/admin/grants", json={"amount": 100, "reason": "t"}, headers=headers
        )
        assert granted.status_code == 200, granted.text
        created = await admin.post("/v1/videos", json={"prompt": "a calm sea"}, headers=headers)
    assert created.status_code == 200, created.text
    async with engine.connect() as conn:
        row = (await conn.execute(select(tasks.c.status, tasks.c.next_attempt_at))).one()
    assert row.status == "queued" and row.next_attempt_at is not None  # the reconciler's cue
    await assert_ledger()


async def test_storage_down_is_degraded(app: Starlette, settings: Settings):
    scratch = Path(settings.storage_url.removeprefix("file://")) / TMP_DIR
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    scratch.write_text("a file where the storage needs a directory")
    async with anonymous(app) as anon:
        response = await anon.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["degraded"] == ["storage"]


async def test_database_down_is_not_ready(app: Starlette):
    context = app.state.ctx
    working = context.engine
    context.engine = make_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    try:
        async with anonymous(app) as anon:
            response = await anon.get("/readyz")
    finally:
        await context.engine.dispose()
        context.engine = working
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["database"].startswith("error")
    assert body["degraded"] == ["database"]  # every failing dependency, as the workers say
