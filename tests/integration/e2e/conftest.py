"""End-to-end fixtures: the API in-process; the simulator and ARQ workers as real
processes; PostgreSQL, Redis and moto S3 as private servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings

from core.queue_codec import ARQ_CODEC
from schemas.settings import Settings
from tests.integration.conftest import ADMIN_KEY
from tests.integration.stack import Stack, base_env, simulator
from tests.services import s3_client
from worker.lifecycle import on_shutdown, on_startup

BUCKET = "google-video-test"


def _bucket(s3_endpoint: str) -> dict[str, str]:
    s3 = s3_client(s3_endpoint)
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    return {
        "GOOGLE_VIDEO_STORAGE_URL": f"s3://{BUCKET}/e2e",
        "GOOGLE_VIDEO_S3_ENDPOINT_URL": s3_endpoint,
        "GOOGLE_VIDEO_S3_REGION": "us-east-1",
        "GOOGLE_VIDEO_S3_ACCESS_KEY_ID": "test",
        "GOOGLE_VIDEO_S3_SECRET_ACCESS_KEY": "test",
    }


@contextmanager
def running_stack(
    pg_url: str,
    redis_url: str,
    s3_endpoint: str,
    log_dir: Path,
    extra: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Simulator + one worker; ``extra`` env is given to the worker (and any API process)."""
    with simulator(log_dir) as sim_url:
        env = {**base_env(pg_url, redis_url, _bucket(s3_endpoint), sim_url), **(extra or {})}
        result = Stack(env, sim_url, log_dir)
        result.start_worker()
        try:
            yield result
        finally:
            result.stop_workers()


@pytest.fixture(scope="module")
def stack(pg_url: str, redis_url: str, s3_endpoint: str, tmp_path_factory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("stack-logs")
    with running_stack(pg_url, redis_url, s3_endpoint, log_dir) as result:
        yield result


@pytest.fixture
def settings(stack: Stack, tmp_path: Path) -> Settings:
    env = {
        k.removeprefix("GOOGLE_VIDEO_").lower(): v
        for k, v in stack.env.items()
        if k.startswith("GOOGLE_VIDEO_") and not k.startswith("GOOGLE_VIDEO_SIM_")
    }
    return Settings(
        **{
            **env,
            "data_dir": tmp_path,
            "admin_key": ADMIN_KEY,
            "api_key_cache_seconds": 0,
            "public_url": "http://testserver",
        }
    )


@pytest.fixture
async def acme(client_for, grant) -> httpx.AsyncClient:
    client = await client_for("acme")
    await grant("acme", "acme", 100_000)
    return client


@pytest.fixture(autouse=True)
async def roomy_limits(admin) -> None:
    await admin.put(
        "/v1/admin/config", json={"max_concurrent_tasks_per_user": 100, "task_timeout_seconds": 60}
    )


@pytest.fixture
async def job_ctx(stack, settings: Settings) -> AsyncIterator[dict[str, Any]]:
    stack.stop_workers()
    redis = await create_pool(RedisSettings.from_dsn(settings.redis_url), **ARQ_CODEC)
    ctx: dict[str, Any] = {"settings": settings, "redis": redis, "job_try": 1}
    await on_startup(ctx)
    try:
        yield ctx
    finally:
        await on_shutdown(ctx)
        await redis.aclose()
        stack.start_worker()
