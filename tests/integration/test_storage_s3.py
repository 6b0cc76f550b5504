from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import pytest

from core.storage import ObjectNotFound, S3Storage, StorageError, TransientStorageError
from core.storage.streams import StreamTooLarge, capped
from tests.services import free_port, s3_client

if TYPE_CHECKING:
    pass

MiB = 1024 * 1024


def _s3(bucket: str, endpoint: str, prefix: str = "", part_size: int = 5 * MiB) -> S3Storage:
    return S3Storage(
        bucket,
        prefix,
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id="test",
        secret_access_key="test",
        part_size=part_size,
    )


@pytest.fixture
async def storage(s3_endpoint: str) -> AsyncIterator[S3Storage]:
    storage = _s3(f"test-{uuid.uuid4().hex[:16]}", s3_endpoint, "env/test")
    await storage.ensure_bucket()
    yield storage
    await storage.close()


def _pattern(index: int, size: int) -> bytes:
    return index.to_bytes(4, "big") * (size // 4)


async def _generated(total: int, chunk_size: int) -> AsyncIterator[bytes]:
    for index in range(total // chunk_size):
        yield _pattern(index, chunk_size)


async def _read_all(storage: S3Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in await storage.open_stream(key, 256 * 1024)])


async def test_small_object_is_a_single_put_under_the_prefix(
    storage: S3Storage, s3_endpoint: str
) -> None:
    stored = await storage.put_bytes("videos/v1.mp4", b"small video", "video/mp4")

    assert (stored.size, stored.sha256) == (11, hashlib.sha256(b"small video").hexdigest())
    head = s3_client(s3_endpoint).head_object(Bucket=storage.bucket, Key="env/test/videos/v1.mp4")
    assert head["ContentType"] == "video/mp4"
    assert "-" not in head["ETag"]  # multipart ETags look like "<md5>-<parts>"
    assert await _read_all(storage, "videos/v1.mp4") == b"small video"


@pytest.mark.parametrize(
    ("total", "parts"),
    [(20 * MiB + 64 * 1024, 5), (10 * MiB, 2), (5 * MiB, 1)],
    ids=["short-last-part", "exact-parts", "one-full-part"],
)
async def test_multipart_upload_round_trips_size_and_sha256(
    storage: S3Storage, s3_endpoint: str, total: int, parts: int
) -> None:
    expected = hashlib.sha256()
    async for chunk in _generated(total, 64 * 1024):
        expected.update(chunk)

    stored = await storage.put_stream("videos/big.mp4", _generated(total, 64 * 1024), "video/mp4")

    assert stored.size == total
    assert stored.sha256 == expected.hexdigest()
    assert await storage.stat("videos/big.mp4") == total
    head = s3_client(s3_endpoint).head_object(Bucket=storage.bucket, Key="env/test/videos/big.mp4")
    assert head["ETag"].strip('"').endswith(f"-{parts}")
    assert head["ContentType"] == "video/mp4"
    assert hashlib.sha256(await _read_all(storage, "videos/big.mp4")).hexdigest() == stored.sha256


async def test_rerun_with_same_key_overwrites(storage: S3Storage) -> None:
    await storage.put_stream("videos/v.mp4", _generated(6 * MiB, MiB), "video/mp4")
    await storage.put_bytes("videos/v.mp4", b"replacement", "video/mp4")

    assert await _read_all(storage, "videos/v.mp4") == b"replacement"


async def test_presigned_url_downloads_the_object(storage: S3Storage) -> None:
    await storage.put_bytes("videos/v1.mp4", b"presigned body", "video/mp4")

    url = await storage.presigned_url("videos/v1.mp4", 300)

    assert url is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == b"presigned body"


async def test_missing_object_raises_object_not_found(storage: S3Storage) -> None:
    with pytest.raises(ObjectNotFound):
        await storage.open_stream("videos/missing.mp4")
    assert await storage.stat("videos/missing.mp4") is None


async def test_read_range_fetches_only_the_range(storage: S3Storage) -> None:
    data = _pattern(7, 64 * 1024) + bytes(range(256))
    await storage.put_bytes("videos/v1.mp4", data, "video/mp4")

    assert await storage.read_range("videos/v1.mp4", 1000, 300) == data[1000:1300]
    assert await storage.read_range("videos/v1.mp4", len(data) - 3, 100) == data[-3:]
    assert await storage.read_range("videos/v1.mp4", 0, 0) == b""


async def test_read_range_at_or_past_the_end_is_empty(storage: S3Storage) -> None:
    await storage.put_bytes("videos/v1.mp4", b"0123456789", "video/mp4")
    await storage.put_bytes("videos/empty.mp4", b"", "video/mp4")

    assert await storage.read_range("videos/v1.mp4", 10, 5) == b""
    assert await storage.read_range("videos/v1.mp4", 50, 5) == b""
    assert await storage.read_range("videos/empty.mp4", 0, 5) == b""


async def test_read_range_of_missing_object_raises_object_not_found(storage: S3Storage) -> None:
    with pytest.raises(ObjectNotFound):
        await storage.read_range("videos/missing.mp4", 0, 10)


async def test_delete_is_idempotent(storage: S3Storage) -> None:
    await storage.put_bytes("videos/v1.mp4", b"x", "video/mp4")

    await storage.delete("videos/v1.mp4")
    await storage.delete("videos/v1.mp4")

    assert await storage.stat("videos/v1.mp4") is None


async def test_delete_prefix_deletes_only_matching_keys(storage: S3Storage) -> None:
    for key in ("videos/v1/a.mp4", "videos/v1/b.jpg", "videos/v10/a.mp4"):
        await storage.put_bytes(key, b"x", "application/octet-stream")

    assert await storage.delete_prefix("videos/v1/") == 2
    assert await storage.stat("videos/v1/a.mp4") is None
    assert await storage.stat("videos/v10/a.mp4") == 1


async def _assert_no_upload_left(storage: S3Storage, s3_endpoint: str, key: str) -> None:
    client = s3_client(s3_endpoint)
    assert await storage.stat(key) is None
    assert client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", []) == []


async def test_failing_source_aborts_the_multipart_upload(
    storage: S3Storage, s3_endpoint: str
) -> None:
    async def broken() -> AsyncIterator[bytes]:
        for index in range(12):  # two full parts, then the upstream dies
            yield _pattern(index, MiB)
        raise ConnectionResetError("upstream went away")

    with pytest.raises(ConnectionResetError):
        await storage.put_stream("videos/broken.mp4", broken(), "video/mp4")

    await _assert_no_upload_left(storage, s3_endpoint, "videos/broken.mp4")


async def test_stream_past_its_cap_aborts_the_multipart_upload(
    storage: S3Storage, s3_endpoint: str
) -> None:
    client = s3_client(s3_endpoint)
    uploading: list[int] = []
    read = 0

    async def endless() -> AsyncIterator[bytes]:  # no length to trust: only the count stops it
        nonlocal read
        while True:
            if read == 7:  # a 5 MiB part is on its way: the multipart upload exists
                listed = await asyncio.to_thread(
                    client.list_multipart_uploads, Bucket=storage.bucket
                )
                uploading.append(len(listed.get("Uploads", [])))
            read += 1
            yield _pattern(read, MiB)

    with pytest.raises(StreamTooLarge):
        await storage.put_stream("videos/huge.mp4", capped(endless(), 7 * MiB), "video/mp4")

    assert uploading == [1]
    assert read == 8  # the cap's 7 MiB and the chunk that passed it, nothing more
    await _assert_no_upload_left(storage, s3_endpoint, "videos/huge.mp4")


async def test_cancelled_upload_is_aborted(storage: S3Storage, s3_endpoint: str) -> None:
    sent_a_part = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        for index in range(7):
            yield _pattern(index, MiB)
        sent_a_part.set()
        await asyncio.Event().wait()
        yield b""

    task = asyncio.create_task(storage.put_stream("videos/cancel.mp4", stalls(), "video/mp4"))
    await asyncio.wait_for(sent_a_part.wait(), 10)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    await _assert_no_upload_left(storage, s3_endpoint, "videos/cancel.mp4")


async def test_unreachable_endpoint_is_transient() -> None:
    storage = _s3("bucket", f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(TransientStorageError):
            await storage.check()
    finally:
        await storage.close()


async def test_bad_credentials_fail_check_with_storage_error(s3_endpoint: str) -> None:
    # moto accepts any credentials, but not a bucket name S3 would reject.
    storage = _s3("Invalid_Bucket_Name!", s3_endpoint)
    try:
        with pytest.raises(StorageError):
            await storage.check()
    finally:
        await storage.close()


async def test_check_reports_a_missing_bucket_and_never_creates_it(s3_endpoint: str) -> None:
    # Readiness needs s3:ListBucket only; creating buckets is the operator's (issue 12).
    name = f"absent-{uuid.uuid4().hex[:12]}"
    storage = _s3(name, s3_endpoint)
    try:
        with pytest.raises(StorageError, match=f"bucket '{name}' does not exist"):
            await storage.check()
    finally:
        await storage.close()
    names = [b["Name"] for b in s3_client(s3_endpoint).list_buckets()["Buckets"]]
    assert name not in names


# Peak RSS is the kernel's VmHWM, reset at the baseline: ru_maxrss would also count the
# forked pytest image from before exec.
MEMORY_CHILD = """
import asyncio, pathlib, sys
from core.storage import S3Storage

TOTAL, CHUNK = 200 * 1024 * 1024, 256 * 1024

def status_kib(field):
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)

async def chunks():
    for index in range(TOTAL // CHUNK):
        yield index.to_bytes(4, "big") * (CHUNK // 4)

async def main():
    storage = S3Storage(sys.argv[2], endpoint_url=sys.argv[1], region="us-east-1",
                        access_key_id="test", secret_access_key="test")
    await storage.ensure_bucket()
    await storage.put_bytes("warm-up", b"x", "video/mp4")  # botocore loads lazily
    pathlib.Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to current RSS
    baseline = status_kib("VmRSS")
    stored = await storage.put_stream("videos/200mb.mp4", chunks(), "video/mp4")
    assert stored.size == TOTAL, stored
    print((status_kib("VmHWM") - baseline) * 1024)
    await storage.close()

asyncio.run(main())
"""


@pytest.mark.slow
def test_streaming_200_mb_grows_memory_less_than_64_mb(s3_endpoint: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, s3_endpoint, f"memory-{uuid.uuid4().hex[:12]}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    growth = int(result.stdout.strip().splitlines()[-1])
    assert growth < 64 * MiB, f"peak RSS grew by {growth / MiB:.1f} MiB"
