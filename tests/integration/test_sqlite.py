"""The embedded default: the same migrations and the same API on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from core import apikeys
from core.db import make_engine
from core.invariants import ledger_violations
from core.migrate import upgrade
from schemas.settings import Settings
from schemas.status import Role
from service.app import create_app

ADMIN_KEY = "gv_sqlite_admin_key_0123456789abcdef"
PROMPT = "a lighthouse in a storm"
TABLES = {
    "video_tasks",
    "accounts",
    "credit_entries",
    "api_keys",
    "runtime_config",
    "idempotency_records",
}


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_url(tmp_path / "x.db"))
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def redis_clean(redis_url: str) -> str:
    redis = Redis.from_url(redis_url)
    await redis.flushall()
    await redis.aclose()
    return redis_url


@pytest.fixture
async def app(db: AsyncEngine, redis_clean: str, tmp_path: Path) -> AsyncIterator[Starlette]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=str(db.url),
        redis_url=redis_clean,
        storage_url=(tmp_path / "storage").as_uri(),
        admin_key=ADMIN_KEY,
        api_key_cache_seconds=0,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def client(app: Starlette, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    )


@pytest.fixture
async def admin(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app, ADMIN_KEY) as c:
        yield c


@pytest.fixture
async def acme(app: Starlette, db: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with db.begin() as conn:
        _, key = await apikeys.create_key(conn, client_id="acme", name="acme", role=Role.CLIENT)
    async with client(app, key) as c:
        yield c


async def grant(admin: httpx.AsyncClient, user: str, amount: int) -> None:
    response = await admin.post(
        f"/v1/credits/{user}/grants",
        params={"client": "acme"},
        json={"amount": amount, "reason": "test"},
    )
    assert response.status_code == 200, response.text


async def credits(c: httpx.AsyncClient, user: str) -> tuple[int, int, list[str]]:
    body = (await c.get(f"/v1/credits/{user}", params={"limit": 100})).json()
    return body["balance"], body["held"], [e["kind"] for e in body["entries"]]


async def violations(db: AsyncEngine) -> list[str]:
    async with db.connect() as conn:
        return await ledger_violations(conn)


async def test_migrations_create_every_table_on_sqlite(db: AsyncEngine) -> None:
    async with db.connect() as conn:
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    assert names >= TABLES | {"alembic_version"}


async def test_migrating_twice_is_a_no_op(db: AsyncEngine) -> None:
    async def snapshot() -> tuple[Any, ...]:
        async with db.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            schema = (
                await conn.execute(text("SELECT type, name, sql FROM sqlite_master ORDER BY name"))
            ).all()
        return tuple(version), tuple(schema)

    before = await snapshot()
    await upgrade(db)
    assert await snapshot() == before
    assert len(before[0]) == 1


async def test_readiness_reports_sqlite_redis_and_storage_ok(app: Starlette) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as c:
        response = await c.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "storage": "ok"}


async def test_create_holds_credits_and_returns_queued_video(acme, admin, db) -> None:
    await grant(admin, "alice", 250)
    response = await acme.post("/v1/videos", json={"prompt": PROMPT, "user": "alice"})
    assert response.status_code == 200, response.text
    video = response.json()
    assert (video["status"], video["model"], video["price"]) == ("queued", "veo3", 100)
    assert video["created_at"] > 0
    assert await credits(acme, "alice") == (150, 100, ["hold", "grant"])
    assert await violations(db) == []


async def test_create_with_short_balance_is_402_and_changes_nothing(acme, admin, db) -> None:
    await grant(admin, "alice", 99)
    response = await acme.post("/v1/videos", json={"prompt": PROMPT, "user": "alice"})
    assert response.status_code == 402, response.text
    body = response.json()
    assert (body["code"], body["balance"], body["price"]) == ("insufficient_credits", 99, 100)
    assert await credits(acme, "alice") == (99, 0, ["grant"])
    assert (await acme.get("/v1/videos")).json()["data"] == []
    assert await violations(db) == []


async def test_created_videos_are_listed_newest_first(acme, admin) -> None:
    await grant(admin, "acme", 1000)
    ids = [
        (await acme.post("/v1/videos", json={"prompt": f"{PROMPT} {n}"})).json()["id"]
        for n in range(3)
    ]
    listing = (await acme.get("/v1/videos")).json()
    # Ids sort by creation time (milliseconds, then random): newest first.
    assert [v["id"] for v in listing["data"]] == sorted(ids, reverse=True)
    assert listing["has_more"] is False
    retrieved = (await acme.get(f"/v1/videos/{ids[0]}")).json()
    assert retrieved["id"] == ids[0] and retrieved["prompt"] == f"{PROMPT} 0"


async def test_delete_of_queued_video_releases_its_hold(acme, admin, db) -> None:
    await grant(admin, "acme", 300)
    video = (await acme.post("/v1/videos", json={"prompt": PROMPT, "model": "veo3-fast"})).json()
    response = await acme.delete(f"/v1/videos/{video['id']}")
    assert response.status_code == 200, response.text
    assert response.json() == {"id": video["id"], "object": "video.deleted", "deleted": True}
    assert (await acme.get(f"/v1/videos/{video['id']}")).status_code == 404
    assert (await acme.get("/v1/videos")).json()["data"] == []
    assert await credits(acme, "acme") == (300, 0, ["release", "hold", "grant"])
    assert await violations(db) == []


async def test_cancel_releases_and_reports_failed_cancelled(acme, admin, db) -> None:
    await grant(admin, "acme", 300)
    video = (await acme.post("/v1/videos", json={"prompt": PROMPT})).json()
    cancelled = (await acme.post(f"/v1/videos/{video['id']}/cancel")).json()
    assert cancelled["status"] == "failed" and cancelled["cancelled"] is True
    assert cancelled["error"]["code"] == "cancelled"
    assert (await credits(acme, "acme"))[:2] == (300, 0)
    assert await violations(db) == []


async def test_concurrent_creates_never_overspend_on_sqlite(acme, admin, db) -> None:
    """20 creates race for a balance that pays for 5: SQLite serialises the writers."""
    response = await admin.put("/v1/admin/config", json={"max_concurrent_tasks_per_user": 100})
    assert response.status_code == 200, response.text
    await grant(admin, "acme", 5 * 80)

    async def create(n: int) -> int:
        body = {"prompt": f"{PROMPT} {n}", "model": "veo3-fast"}
        status: int = (await acme.post("/v1/videos", json=body)).status_code
        return status

    statuses = await asyncio.gather(*(create(n) for n in range(20)))
    assert sorted(statuses) == [200] * 5 + [402] * 15
    assert (await credits(acme, "acme"))[:2] == (0, 400)
    assert len((await acme.get("/v1/videos", params={"limit": 100})).json()["data"]) == 5
    assert await violations(db) == []
