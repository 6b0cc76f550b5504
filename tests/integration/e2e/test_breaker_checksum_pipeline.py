"""Breaker probe of S3_CHECKSUM_ALGORITHM through the whole pipeline (c3aae2d..0d571ab):
the API and a worker process with ``S3_CHECKSUM_ALGORITHM=crc32`` (lower case, as an
operator may write it) in front of a store that checks flexible checksums as AWS S3 does
(``tests/s3proxy.py``). An image-to-video create (its input stored by the API), the video
stored multipart with CRC32 on every part, the ledger exact, the signed webhook sent;
a store unavailable mid-upload makes the store wait, never charge twice; the deletion's
DeleteObjects carries CRC32 and the objects go."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.repo import tasks
from core.storage.keys import video_key
from tests.eventually import eventually
from tests.integration.e2e.conftest import BUCKET, running_stack
from tests.integration.e2e.helpers import create, credits, finished
from tests.integration.images import PNG_URI
from tests.integration.receiver import Receiver
from tests.integration.stack import Stack
from tests.s3proxy import RefusingProxy
from tests.services import s3_client


@pytest.fixture(scope="module")
def checking(s3_endpoint: str) -> Iterator[RefusingProxy]:
    with RefusingProxy(s3_endpoint, flexible_checksums=True) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def stack(pg_url, redis_url, checking: RefusingProxy, tmp_path_factory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("stack-logs")
    extra = {"GOOGLE_VIDEO_S3_CHECKSUM_ALGORITHM": " crc32 "}
    with running_stack(pg_url, redis_url, checking.url, log_dir, extra) as result:
        yield result


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


async def test_a_video_stored_with_crc32_completes_once_and_is_purged(
    acme, checking: RefusingProxy, receiver: Receiver, engine: AsyncEngine, assert_ledger
) -> None:
    hook = await acme.post("/v1/webhook-endpoints", json={"url": receiver.url("/crc")})
    assert hook.status_code == 201, hook.text
    before = len(checking.seen)
    # 30 MB: four parts of 8 MiB; the store goes away for a while once the upload began.
    video = await create(
        acme, "stored with crc32 [sim:duration=1] [sim:size=30000000]", images=[PNG_URI]
    )
    task_id = video["id"]
    await eventually(
        lambda: [
            s for s in checking.seen if video_key(task_id) in s.target and "partNumber" in s.target
        ],
        30,
        what="the first part arriving",
        interval=0.01,
    )
    checking.unavailable = True
    try:
        await eventually(
            lambda: checking.refused("ServiceUnavailable"), 30, what="a refused request"
        )
    finally:
        checking.unavailable = False
    done = await finished(acme, task_id, deadline=90)
    assert done["status"] == "completed", done
    assert done["video_bytes"] >= 30_000_000

    seen = checking.seen[before:]
    mine = [s for s in seen if video_key(task_id) in s.target]
    assert [s for s in mine if s.refused not in (None, "ServiceUnavailable")] == []
    parts = [s for s in mine if s.method == "PUT" and "partNumber=" in s.target and not s.refused]
    assert parts and {s.checksum for s in parts} == {"CRC32"}
    completes = [
        s for s in mine if s.method == "POST" and "uploadId=" in s.target and not s.refused
    ]
    assert [s.checksum for s in completes] == ["CRC32"]

    _balance, held, kinds = await credits(acme)
    assert held == 0 and kinds.count("capture") == 1 and "release" not in kinds
    await assert_ledger()
    received = await receiver.wait_for("/crc", 1)
    assert [r.headers.get("webhook-id") for r in received]
    assert b"video.completed" in received[0].body

    deletes_before = len(checking.seen)
    assert (await acme.delete(f"/v1/videos/{task_id}")).status_code == 200

    async def storage_status() -> str:
        async with engine.connect() as conn:
            task = await tasks.load(conn, task_id)
        assert task is not None
        return task.storage_status

    await eventually(storage_status, 30, until=lambda s: s == "deleted", what="purge")
    deletes = [
        s for s in checking.seen[deletes_before:] if s.method == "POST" and "delete" in s.target
    ]
    assert deletes and all(s.refused is None and s.checksum == "CRC32" for s in deletes)


async def test_a_part_the_store_refuses_fails_the_video_once_released_and_nothing_stays(
    acme, checking: RefusingProxy, receiver: Receiver, s3_endpoint: str, assert_ledger
) -> None:
    hook = await acme.post("/v1/webhook-endpoints", json={"url": receiver.url("/refused")})
    assert hook.status_code == 201, hook.text
    _, _, kinds_before = await credits(acme)
    checking.refuse_part = 2  # 403 AccessDenied, once part 3 is in flight too: permanent
    try:
        video = await create(acme, "refused part [sim:duration=1] [sim:size=30000000]")
        done = await finished(acme, video["id"], deadline=90)
    finally:
        checking.refuse_part = None
    assert done["status"] == "failed" and done["error"]["code"] == "download_failed", done
    assert "AccessDenied" in done["error"]["message"]
    _balance, held, kinds = await credits(acme)
    new = kinds[: len(kinds) - len(kinds_before)]
    assert held == 0 and sorted(new) == ["hold", "release"], kinds
    await assert_ledger()
    (received,) = await receiver.wait_for("/refused", 1)
    assert b"video.failed" in received.body
    client = s3_client(s3_endpoint)
    bucket = BUCKET
    key = f"e2e/{video_key(video['id'])}"
    assert client.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) == 0
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
    assert uploads == []
