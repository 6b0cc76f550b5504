"""S3_CHECKSUM_ALGORITHM against moto: behind tests/s3proxy.py checking flexible checksums as
AWS S3 does, and behind the strict proxy that refuses them as older stores do."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from core.storage import S3Storage, StorageError, TransientStorageError
from tests.s3proxy import CHECKSUMS, RefusingProxy, Seen
from tests.services import s3_client, s3_storage_from_settings

MiB = 1024 * 1024
PART = 8 * MiB  # S3Storage's default part size, which storage_from uses


def _storage(endpoint: str, algorithm: str | None, public: str | None = None) -> S3Storage:
    return s3_storage_from_settings(endpoint, algorithm, bucket="checksums", public=public)


@pytest.fixture
async def crc32(checking: RefusingProxy) -> AsyncIterator[S3Storage]:
    storage = _storage(checking.url, "crc32")
    await storage.ensure_bucket()
    yield storage
    await storage.close()


def _data(size: int) -> bytes:
    return b"".join(n.to_bytes(4, "big") * (MiB // 4) for n in range(size // MiB)) + b"tail"


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), MiB):
        yield data[start : start + MiB]


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _composite(algorithm: str, parts: list[bytes]) -> str:
    """S3's COMPOSITE checksum: the algorithm's checksum of the parts' checksums (which
    AWS S3 reports followed by ``-<number of parts>``)."""
    digest = CHECKSUMS[algorithm]
    return _b64(digest(b"".join(digest(part) for part in parts)))


def _since(proxy: RefusingProxy, before: int, bucket: str) -> list[Seen]:
    """The requests about ``bucket`` (its objects, its DeleteObjects) since ``before``."""
    return [s for s in proxy.seen[before:] if s.target.startswith((f"/{bucket}/", f"/{bucket}?"))]


@pytest.mark.parametrize("algorithm", ["CRC32", "sha1", "Sha256"])
async def test_a_multipart_store_checks_every_part_and_completes_with_a_composite_checksum(
    checking: RefusingProxy, s3_endpoint: str, algorithm: str
) -> None:
    algorithm = algorithm.upper()
    storage = _storage(checking.url, algorithm)
    data = _data(2 * PART)  # three parts: 8 MiB, 8 MiB and the 4-byte tail
    before = len(checking.seen)
    try:
        await storage.ensure_bucket()
        stored = await storage.put_stream("videos/t1/video.mp4", _chunks(data), "video/mp4")
        read = b"".join([c async for c in await storage.open_stream("videos/t1/video.mp4")])
    finally:
        await storage.close()

    assert read == data and stored.size == len(data)
    seen = _since(checking, before, storage.bucket)
    assert [s.refused for s in seen if s.refused] == []
    parts = [s for s in seen if s.method == "PUT" and "partNumber=" in s.target]
    completes = [s for s in seen if s.method == "POST" and "uploadId=" in s.target]
    assert [s.checksum for s in parts] == [algorithm] * 3  # each part's checked by the store
    assert [s.checksum for s in completes] == [algorithm]  # each part's listed in the complete
    client, key = s3_client(s3_endpoint), "p/videos/t1/video.mp4"
    head = client.head_object(Bucket=storage.bucket, Key=key, ChecksumMode="ENABLED")
    chunks = [data[:PART], data[PART : 2 * PART], data[2 * PART :]]
    # moto 5.2's HeadObject leaves out the "-3" that AWS S3 (and moto's GetObject) append,
    # and the type, which GetObjectAttributes reports.
    reported = str(head.get(f"Checksum{algorithm}", "")).removesuffix("-3")
    assert reported == _composite(algorithm, chunks)
    attributes = client.get_object_attributes(
        Bucket=storage.bucket, Key=key, ObjectAttributes=["Checksum"]
    )
    assert attributes["Checksum"]["ChecksumType"] == "COMPOSITE"


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])  # CRC32: botocore's default too
async def test_a_small_object_is_one_put_carrying_the_checksum(
    checking: RefusingProxy, s3_endpoint: str, algorithm: str
) -> None:
    storage = _storage(checking.url, algorithm)
    before = len(checking.seen)
    try:
        await storage.ensure_bucket()
        await storage.put_bytes("inputs/t2/0.png", b"image bytes", "image/png")
        assert await storage.read_range("inputs/t2/0.png", 0, 5) == b"image"
    finally:
        await storage.close()

    puts = [s for s in _since(checking, before, storage.bucket) if s.method == "PUT"]
    assert [(s.refused, s.checksum) for s in puts] == [(None, algorithm)]
    head = s3_client(s3_endpoint).head_object(
        Bucket=storage.bucket, Key="p/inputs/t2/0.png", ChecksumMode="ENABLED"
    )
    assert head.get(f"Checksum{algorithm}") == _b64(CHECKSUMS[algorithm](b"image bytes"))


async def test_deleting_sends_a_flexible_checksum_instead_of_content_md5(
    crc32: S3Storage, checking: RefusingProxy
) -> None:
    await crc32.put_bytes("videos/t3/video.mp4", b"video", "video/mp4")
    await crc32.put_bytes("videos/t3/thumbnail.webp", b"thumb", "image/webp")
    before = len(checking.seen)

    assert await crc32.delete_prefix("videos/t3/") == 2

    deletes = [s for s in _since(checking, before, crc32.bucket) if s.method == "POST"]
    assert [(s.refused, s.checksum) for s in deletes] == [(None, "CRC32")]
    assert await crc32.stat("videos/t3/video.mp4") is None


async def test_a_store_that_refuses_flexible_checksums_fails_each_upload_naming_the_setting(
    strict: RefusingProxy, s3_endpoint: str
) -> None:
    storage = _storage(strict.url, "CRC32")
    try:
        await storage.ensure_bucket()  # no checksum: accepted
        with pytest.raises(StorageError, match="S3_CHECKSUM_ALGORITHM is CRC32") as small:
            await storage.put_bytes("inputs/t4/0.png", b"image", "image/png")
        with pytest.raises(StorageError, match="S3_CHECKSUM_ALGORITHM is CRC32") as large:
            await storage.put_stream("videos/t4/video.mp4", _chunks(_data(PART)), "video/mp4")
    finally:
        await storage.close()

    for refused in (small.value, large.value):  # not retried as if the store were down
        assert not isinstance(refused, TransientStorageError)
        assert "InvalidArgument Unsupported header 'x-amz-" in str(refused)
    client = s3_client(s3_endpoint)
    assert client.list_objects_v2(Bucket=storage.bucket)["KeyCount"] == 0
    assert client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", []) == []
