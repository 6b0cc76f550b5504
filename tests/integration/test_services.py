from __future__ import annotations

import uuid

import redis.asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.services import PostgresServer, RedisServer, s3_client


async def _run(url: str, *statements: str) -> object:
    """Run the statements in one committed transaction; return the last one's scalar."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                result = await connection.execute(text(statement))
            return result.scalar() if result.returns_rows else None
    finally:
        await engine.dispose()


async def test_postgres_answers_select_1(pg_url: str) -> None:
    assert await _run(pg_url, "SELECT 1") == 1
    assert await _run(pg_url, "SELECT current_database()") == "google_video"


async def test_redis_answers_ping(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()


def test_s3_endpoint_creates_and_lists_buckets(s3_endpoint: str) -> None:
    client = s3_client(s3_endpoint)
    bucket = f"services-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    assert bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}


async def test_postgres_kill_then_start_keeps_port_and_committed_rows(
    postgres: PostgresServer,
) -> None:
    await _run(
        postgres.url,
        "CREATE TABLE restart_probe (id int)",
        "INSERT INTO restart_probe VALUES (1)",
    )
    port = postgres.port

    postgres.kill()
    postgres.start()

    assert postgres.port == port
    assert await _run(postgres.url, "SELECT count(*) FROM restart_probe") == 1
    await _run(postgres.url, "DROP TABLE restart_probe")


async def test_postgres_restart_keeps_port(postgres: PostgresServer) -> None:
    port = postgres.port
    postgres.restart()
    assert postgres.port == port
    assert await _run(postgres.url, "SELECT 1") == 1


def test_redis_restart_keeps_port(redis_server: RedisServer) -> None:
    port = redis_server.port
    redis_server.restart()
    assert redis_server.port == port
    redis_server.flushall()
