"""Behind PgBouncer in transaction mode (the pooler the README recommends for many
replicas): with ``?pgbouncer=true`` on ``DATABASE_URL`` the API, a worker and the
migrations run through a 2-connection pool, videos complete and the ledger holds; without
it, asyncpg's named prepared statements land on the wrong server connection."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from cli.localservices import PG_BIN, PostgresServer
from core.db import autocommit, make_engine
from core.migrate import upgrade
from tests.integration.conftest import TABLES
from tests.integration.e2e.conftest import running_stack
from tests.integration.e2e.helpers import create, finished
from tests.integration.stack import Stack
from tests.pgbouncer import PgBouncer

DATABASE = "through_pgbouncer"


@pytest.fixture(scope="module")
def bouncer(postgres: PostgresServer) -> Iterator[PgBouncer]:
    port = postgres.port
    assert port is not None
    created = subprocess.run(
        [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE],
        capture_output=True,
        check=False,
    )
    assert created.returncode == 0 or b"already exists" in created.stderr, created.stderr
    base_dir = Path(tempfile.mkdtemp(prefix="google-video-pgbouncer-"))
    base_dir.chmod(0o755)
    with PgBouncer(base_dir, port, DATABASE, pool_size=2) as server:
        yield server


@pytest.fixture(scope="module")
def stack(bouncer, redis_url, s3_endpoint, tmp_path_factory) -> Iterator[Stack]:
    async def migrate() -> None:
        engine = make_engine(bouncer.url)
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    log_dir = tmp_path_factory.mktemp("pgbouncer-logs")
    with running_stack(bouncer.url, redis_url, s3_endpoint, log_dir) as result:
        yield result


@pytest.fixture
async def engine(stack, bouncer, redis_url) -> AsyncIterator[AsyncEngine]:
    """The e2e fixtures' database (keys, grants, the ledger check), through the pooler."""
    redis = Redis.from_url(redis_url)
    await redis.flushall()
    await redis.aclose()
    result = make_engine(bouncer.url, pool_size=5)
    async with result.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
    yield result
    await result.dispose()


async def test_videos_complete_through_a_transaction_pooler(acme, assert_ledger):
    videos = await asyncio.gather(*(create(acme, f"pooled {i} [sim:duration=1]") for i in range(6)))
    done = await asyncio.gather(*(finished(acme, v["id"], deadline=60) for v in videos))
    assert [d["status"] for d in done] == ["completed"] * 6
    await assert_ledger()


async def test_without_the_flag_prepared_statements_break(bouncer):
    plain = make_engine(bouncer.url.replace("?pgbouncer=true", ""), pool_size=10)

    async def queries(i: int) -> None:
        for _ in range(20):
            async with plain.begin() as conn:
                await conn.execute(text("SELECT CAST(:x AS int) + 1"), {"x": i})

    # The break needs a statement prepared on one server connection and run on another:
    # likely in one round of 200 queries, not certain on a busy machine; a few rounds are.
    try:
        with pytest.raises(DBAPIError, match="prepared statement"):
            for _ in range(10):
                await asyncio.gather(*(queries(i) for i in range(10)))
    finally:
        await plain.dispose()


async def test_statements_outside_a_transaction_run_through_the_pooler(bouncer):
    """``core.db.autocommit`` behind the pooler: without a statement cache asyncpg prepares
    and executes in two round trips, which PgBouncer may give to two server connections
    unless they share a transaction (a worker's heartbeat failed a store that way)."""
    pooled = make_engine(bouncer.url, pool_size=10)

    async def queries(i: int) -> None:
        for _ in range(20):
            async with autocommit(pooled) as conn:
                assert await conn.scalar(text("SELECT CAST(:x AS int) + 1"), {"x": i}) == i + 1

    try:
        for _ in range(5):  # the test above breaks in the first rounds without the pin
            await asyncio.gather(*(queries(i) for i in range(10)))
    finally:
        await pooled.dispose()
