"""The API running in-process over real PostgreSQL (or SQLite) and Redis, a fresh state
per test.

A module runs its tests on both databases by overriding ``backend``::

    @pytest.fixture(params=BACKENDS)
    def backend(request): return request.param
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from starlette.applications import Starlette

import schemas.tables  # noqa: F401  (registers every table on SQLModel.metadata)
from core.db import make_engine
from core.invariants import ledger_violations
from core.migrate import upgrade
from core.queue_codec import queue_client
from schemas.config import RuntimeConfigPatch
from schemas.settings import Settings
from service.app import create_app
from tests.s3proxy import RefusingProxy

ADMIN_KEY = "gv_test_admin_key_0123456789abcdef"
TABLES = tuple(SQLModel.metadata.tables)  # every table the models define
BACKENDS = ("postgresql", "sqlite")


@pytest.fixture
def backend() -> str:
    """The database the API runs on: PostgreSQL unless a module asks for both."""
    return "postgresql"


@pytest.fixture(scope="session")
async def migrated(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(pg_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, made once; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"

    async def migrate() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        await engine.dispose()

    asyncio.run(migrate())
    return path


@pytest.fixture
async def engine(
    backend: str,
    migrated: AsyncEngine,
    sqlite_template: Path,
    redis_url: str,
    tmp_path: Path,
) -> AsyncIterator[AsyncEngine]:
    """The shared PostgreSQL test database emptied, or a fresh copy of a migrated SQLite
    file, for each test (and Redis flushed). Both are session fixtures named here, so
    they are ready before any module-scoped fixture (a process stack) needs them."""
    redis = Redis.from_url(redis_url)
    await redis.flushall()
    await redis.aclose()
    if backend == "sqlite":
        copy = tmp_path / "api.db"
        shutil.copyfile(sqlite_template, copy)
        sqlite = make_engine(f"sqlite+aiosqlite:///{copy}")
        yield sqlite
        await sqlite.dispose()
        return
    await migrated.dispose()  # fresh connections: an earlier test may have restarted the server
    async with migrated.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
    yield migrated


@pytest.fixture
def settings(engine: AsyncEngine, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=engine.url.render_as_string(hide_password=False),
        redis_url=redis_url,
        storage_url=(tmp_path / "storage").as_uri(),
        admin_key=ADMIN_KEY,
        api_key_cache_seconds=0,
        public_url="http://testserver",
        egress_allow=["127.0.0.0/8"],  # webhook receivers on loopback, as in the stack
        egress_allow_http=True,
    )


@pytest.fixture
async def app(engine: AsyncEngine, settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        # Tests poll every 20 ms, far above any client's rate: that limit is tested on its
        # own (test_limits.py sets the limits it tests).
        unlimited = RuntimeConfigPatch(client_requests_per_minute=1_000_000)
        await application.state.ctx.config.update(unlimited)
        yield application


@pytest.fixture
async def admin(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app, ADMIN_KEY) as client:
        yield client


@pytest.fixture
def configure(admin: httpx.AsyncClient) -> Any:
    """``await configure(name=value, ...)``: the runtime config changed as an admin would
    (``PUT /v1/admin/config``), asserting it was accepted."""

    async def put(**changes: Any) -> None:
        response = await admin.put("/v1/admin/config", json=changes)
        assert response.status_code == 200, response.text

    return put


def _client(app: Starlette, key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


@pytest.fixture
def client_for(app: Starlette, engine: AsyncEngine) -> Any:
    """``await client_for("acme")`` → an AsyncClient with a fresh client-role key for acme."""
    from core import apikeys
    from schemas.status import Role

    async def make(client_id: str, role: Role = Role.CLIENT) -> httpx.AsyncClient:
        async with engine.begin() as conn:
            _, key = await apikeys.create_key(conn, client_id=client_id, name=client_id, role=role)
        client = _client(app, key)
        client.api_key = key  # type: ignore[attr-defined]
        return client

    return make


@pytest.fixture
async def grant(admin: httpx.AsyncClient) -> Any:
    async def give(client_id: str, user: str, amount: int) -> dict[str, Any]:
        response = await admin.post(
            f"/v1/credits/{user}/grants",
            params={"client": client_id},
            json={"amount": amount, "reason": "test"},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    return give


@pytest.fixture
async def assert_ledger(engine: AsyncEngine) -> Any:
    async def check() -> None:
        async with engine.connect() as conn:
            assert await ledger_violations(conn) == []

    return check


async def _funded(client_for: Any, grant: Any, name: str) -> AsyncIterator[httpx.AsyncClient]:
    client = await client_for(name)
    await grant(name, name, 1000)
    async with client:
        yield client


@pytest.fixture
async def acme(client_for: Any, grant: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client ``acme`` whose user ``acme`` holds 1,000 credits."""
    async for client in _funded(client_for, grant, "acme"):
        yield client


@pytest.fixture
async def globex(client_for: Any, grant: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A second tenant, ``globex``, funded like ``acme``."""
    async for client in _funded(client_for, grant, "globex"):
        yield client


@pytest.fixture(scope="module")
def strict(s3_endpoint: str) -> Iterator[RefusingProxy]:
    """moto behind a proxy that refuses what strict S3-compatible stores refuse
    (``tests/s3proxy.py``)."""
    with RefusingProxy(s3_endpoint) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def checking(s3_endpoint: str) -> Iterator[RefusingProxy]:
    """moto behind a proxy that takes S3's flexible checksums and checks them as AWS S3
    does."""
    with RefusingProxy(s3_endpoint, flexible_checksums=True) as proxy:
        yield proxy


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    """An ARQ client (``queue_client``, the product's codec and timeouts) on the test
    Redis, its database flushed before and after."""
    client = queue_client(redis_url, connect_timeout=2, timeout=5)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()
