"""Breaker probes of a store refusing the API's writes (S3_CHECKSUM_ALGORITHM, c3aae2d..
0d571ab: "a store that refuses them fails every upload with a storage error naming the
setting"). The API stores inputs itself (``POST /v1/uploads``, a create with an inline
image): there the refusal, or a store that is down, must answer a problem+json 503
``unavailable`` with an ``X-Request-ID`` (a backing service's trouble, as for the database
and Redis), never a 500 ``internal_error``, and leave nothing held or recorded. On
PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.repo.tables import tasks, uploads
from schemas.settings import Settings
from tests.integration.conftest import ADMIN_KEY, BACKENDS
from tests.integration.images import data_uri, png_bytes
from tests.integration.test_hostile_kinds import assert_problem
from tests.s3proxy import RefusingProxy
from tests.services import s3_client

IMAGE = png_bytes(64, 64)
BUCKET = f"refusing-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def strict(s3_endpoint: str) -> Iterator[RefusingProxy]:
    s3_client(s3_endpoint).create_bucket(Bucket=BUCKET)
    with RefusingProxy(s3_endpoint) as proxy:
        yield proxy


@pytest.fixture(params=["checksum_refused", "store_down"])
def settings(
    request: pytest.FixtureRequest,
    engine: AsyncEngine,
    redis_url: str,
    tmp_path: Path,
    strict: RefusingProxy,
) -> Iterator[Settings]:
    """The API on S3 behind the strict store: with CRC32 it refuses every upload
    (InvalidArgument); without, the store is down (503 ServiceUnavailable)."""
    refused = request.param == "checksum_refused"
    strict.unavailable = not refused
    try:
        yield Settings(
            environment="test",
            data_dir=tmp_path,
            database_url=engine.url.render_as_string(hide_password=False),
            redis_url=redis_url,
            storage_url=f"s3://{BUCKET}/api",
            s3_endpoint_url=strict.url,
            s3_access_key_id="test",
            s3_secret_access_key="test",
            s3_checksum_algorithm="CRC32" if refused else None,
            admin_key=ADMIN_KEY,
            api_key_cache_seconds=0,
            public_url="http://testserver",
        )
    finally:
        strict.unavailable = False


async def test_an_upload_the_store_refuses_is_a_503_and_leaves_no_upload(
    acme: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await acme.post("/v1/uploads", files=[("file", ("a.png", IMAGE, "image/png"))])
    assert_problem(response, 503, "unavailable")
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(uploads))).scalar_one() == 0


async def test_an_image_create_the_store_refuses_is_a_503_and_holds_nothing(
    acme: httpx.AsyncClient, engine: AsyncEngine, assert_ledger
) -> None:
    response = await acme.post(
        "/v1/videos", json={"prompt": "an image the store refuses", "images": [data_uri(IMAGE)]}
    )
    assert_problem(response, 503, "unavailable")
    body = (await acme.get("/v1/credits/acme")).json()
    assert (body["balance"], body["held"]) == (1000, 0)
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(tasks))).scalar_one() == 0
    await assert_ledger()
