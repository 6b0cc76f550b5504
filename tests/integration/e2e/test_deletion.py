"""Deleting a video is retried until its objects are gone: the API answers at once, the purge
job keeps at it through a store outage, and the reconciler takes over a job that was lost.
The stack's storage is moto behind tests/s3proxy.py, a store as strict as MinIO or Ceph."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from core.repo import tasks
from core.storage import S3Storage
from core.storage.keys import input_key, spritesheet_key, thumbnail_key, video_key
from tests.eventually import eventually
from tests.integration.e2e.conftest import BUCKET, running_stack
from tests.integration.e2e.helpers import create, finished
from tests.integration.images import PNG_URI
from tests.integration.stack import Stack
from tests.s3proxy import RefusingProxy


@pytest.fixture(scope="module")
def stack(pg_url, redis_url, strict: RefusingProxy, tmp_path_factory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("stack-logs")
    with running_stack(pg_url, redis_url, strict.url, log_dir) as result:
        yield result


@pytest.fixture
async def behind(s3_endpoint: str) -> AsyncIterator[S3Storage]:
    """The stack's objects, read straight from moto (past the proxy and its outages)."""
    storage = S3Storage(
        BUCKET,
        "e2e",
        endpoint_url=s3_endpoint,
        access_key_id="test",
        secret_access_key="test",
    )
    yield storage
    await storage.close()


async def _stored_video(acme) -> tuple[str, list[str]]:
    """A completed image-to-video video and the keys of its objects (input included)."""
    video = await create(acme, "deleted later [sim:duration=1]", images=[PNG_URI])
    assert (await finished(acme, video["id"]))["status"] == "completed"
    task_id = video["id"]
    keys = [f(task_id) for f in (video_key, thumbnail_key, spritesheet_key)]
    return task_id, [*keys, input_key(task_id, 0, "png")]


async def _present(storage: S3Storage, keys: list[str]) -> list[str]:
    return [key for key in keys if await storage.stat(key) is not None]


async def _storage_status(engine: AsyncEngine, task_id: str) -> str:
    async with engine.connect() as conn:
        task = await tasks.load(conn, task_id)
    assert task is not None
    return task.storage_status


async def test_a_delete_during_a_store_outage_answers_200_and_the_objects_go_once_it_recovers(
    acme, strict: RefusingProxy, behind: S3Storage, engine: AsyncEngine
) -> None:
    task_id, keys = await _stored_video(acme)
    assert await _present(behind, keys) == keys
    refused = len(strict.refused("ServiceUnavailable"))
    strict.unavailable = True
    try:
        response = await acme.delete(f"/v1/videos/{task_id}")
        assert response.status_code == 200, response.text
        assert response.json()["deleted"] is True
        assert (await acme.get(f"/v1/videos/{task_id}")).status_code == 404
        await eventually(
            lambda: len(strict.refused("ServiceUnavailable")) > refused,
            what="the purge job trying the unavailable store",
        )
        assert await _present(behind, keys) == keys
        assert await _storage_status(engine, task_id) == "deleting"
    finally:
        strict.unavailable = False

    await eventually(
        lambda: _storage_status(engine, task_id), 30, until=lambda s: s == "deleted", what="purge"
    )
    assert await _present(behind, keys) == []


async def test_a_purge_lost_with_redis_is_finished_by_the_reconciler(
    acme, stack: Stack, redis_url: str, behind: S3Storage, engine: AsyncEngine
) -> None:
    task_id, keys = await _stored_video(acme)
    stack.stop_workers()
    try:
        assert (await acme.delete(f"/v1/videos/{task_id}")).status_code == 200
        redis = Redis.from_url(redis_url)
        await redis.flushall()  # the purge job is gone; the row still says "deleting"
        await redis.aclose()
        assert await _present(behind, keys) == keys
    finally:
        stack.start_worker()

    await eventually(
        lambda: _storage_status(engine, task_id), 30, until=lambda s: s == "deleted", what="purge"
    )
    assert await _present(behind, keys) == []


async def test_a_video_whose_task_was_cancelled_while_storing_is_purged_when_deletes_fail(
    acme, strict: RefusingProxy, behind: S3Storage, engine: AsyncEngine
) -> None:
    """The store uploads, loses to the cancel, and cannot delete its upload: the row goes
    ``deleting`` and the purge job removes the video once the store lets it (the input stays:
    the task was cancelled, not deleted)."""
    video = await create(acme, "cancelled while storing [sim:duration=1] [sim:size=30000000]")
    task_id = video["id"]
    await eventually(
        lambda: [
            s for s in strict.seen if video_key(task_id) in s.target and "uploads" in s.target
        ],
        30,
        what="the store starting its multipart upload",
        interval=0.01,
    )
    strict.refuse_deletes = True
    try:
        assert (await acme.post(f"/v1/videos/{task_id}/cancel")).status_code == 200
        status = await eventually(
            lambda: _storage_status(engine, task_id),
            30,
            until=lambda s: s == "deleting",
            what="the store leaving its video to the purge job",
        )
        assert status == "deleting"
    finally:
        strict.refuse_deletes = False
    await eventually(
        lambda: _storage_status(engine, task_id), 30, until=lambda s: s == "deleted", what="purge"
    )
    assert await _present(behind, [video_key(task_id)]) == []


async def test_a_store_outage_longer_than_the_download_tries_still_completes_the_video(
    acme, strict: RefusingProxy, engine: AsyncEngine
) -> None:
    """The upstream was paid for the video: our own store failing (more requests refused
    than DOWNLOAD_MAX_TRIES=3 store attempts would make) delays it, never fails it."""
    refused = len(strict.refused("ServiceUnavailable"))
    strict.unavailable = True
    try:
        video = await create(acme, "stored after an outage [sim:duration=1]")
        await eventually(
            lambda: len(strict.refused("ServiceUnavailable")) - refused,
            60,
            until=lambda n: n >= 20,
            what="the store retrying through the outage",
        )
        assert (await _status(engine, video["id"])) == "storing"
    finally:
        strict.unavailable = False
    done = await finished(acme, video["id"], deadline=60)
    assert done["status"] == "completed", done


async def _status(engine: AsyncEngine, task_id: str) -> str:
    async with engine.connect() as conn:
        task = await tasks.load(conn, task_id)
    assert task is not None
    return str(task.status)
