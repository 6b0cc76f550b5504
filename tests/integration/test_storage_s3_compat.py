"""S3Storage against a strict S3-compatible store: moto behind tests/s3proxy.py, which
refuses flexible-checksum headers, a DeleteObjects without Content-MD5, SigV2 and any
signature not valid for the request as received."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from core.storage import S3Storage, StorageError
from tests.s3proxy import RefusingProxy
from tests.services import s3_client

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def public(s3_endpoint: str) -> Iterator[RefusingProxy]:
    """A second address of the same store, standing in for its public hostname."""
    with RefusingProxy(s3_endpoint) as proxy:
        yield proxy


def _storage(
    endpoint: str, *, public_endpoint: str | None = None, region: str | None = None
) -> S3Storage:
    return S3Storage(
        f"strict-{uuid.uuid4().hex[:16]}",
        "env/test",
        endpoint_url=endpoint,
        public_endpoint_url=public_endpoint,
        region=region,
        access_key_id="test",
        secret_access_key="test",
    )


@pytest.fixture
async def storage(strict: RefusingProxy) -> AsyncIterator[S3Storage]:
    storage = _storage(strict.url)
    await storage.ensure_bucket()
    yield storage
    await storage.close()


async def _parts(total: int) -> AsyncIterator[bytes]:
    for index in range(total // MiB):
        yield index.to_bytes(4, "big") * (MiB // 4)


def test_the_proxy_refuses_what_strict_stores_refuse(strict: RefusingProxy) -> None:
    stock = boto3.client(
        "s3",
        endpoint_url=strict.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(request_checksum_calculation="when_supported", signature_version="s3v4"),
    )
    bucket = f"stock-{uuid.uuid4().hex[:12]}"
    stock.create_bucket(Bucket=bucket)
    with pytest.raises(ClientError, match="InvalidArgument"):  # x-amz-checksum-crc32
        stock.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError, match="InvalidArgument"):  # CRC32 instead of Content-MD5
        stock.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k"}]})
    sigv2 = boto3.client(
        "s3",
        endpoint_url=strict.url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(signature_version="s3"),
    ).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    assert httpx.get(sigv2).status_code == 400
    sigv4 = stock.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    moved = sigv4.replace("127.0.0.1", "localhost", 1)  # signed for another host
    assert httpx.get(moved).status_code == 403
    assert {s.refused for s in strict.refused()} >= {
        "InvalidArgument",
        "InvalidRequest",
        "SignatureDoesNotMatch",
    }


async def test_every_operation_succeeds_behind_a_strict_store(
    storage: S3Storage, strict: RefusingProxy
) -> None:
    before = len(strict.refused())
    await storage.put_bytes("inputs/t1/0.png", b"image", "image/png")
    stored = await storage.put_stream("videos/t1/video.mp4", _parts(11 * MiB), "video/mp4")
    await storage.put_bytes("videos/t1/thumbnail.webp", b"thumb", "image/webp")

    assert await storage.stat("videos/t1/video.mp4") == stored.size == 11 * MiB
    assert await storage.read_range("videos/t1/video.mp4", 4 * MiB, 4) == (4).to_bytes(4, "big")
    chunks = [c async for c in await storage.open_stream("inputs/t1/0.png")]
    assert b"".join(chunks) == b"image"
    assert await storage.delete_prefix("videos/t1/") == 2
    await storage.delete("inputs/t1/0.png")

    assert await storage.stat("videos/t1/video.mp4") is None
    assert await storage.stat("inputs/t1/0.png") is None
    assert strict.refused()[before:] == []


@pytest.mark.parametrize("region", [None, "us-east-1", "eu-west-1"])
async def test_presigned_urls_are_sigv4_and_download_through_the_public_endpoint(
    strict: RefusingProxy, public: RefusingProxy, region: str | None
) -> None:
    storage = _storage(strict.url, public_endpoint=public.url, region=region)
    try:
        await storage.ensure_bucket()
        await storage.put_bytes("videos/t2/video.mp4", b"presigned body", "video/mp4")
        url = await storage.presigned_url("videos/t2/video.mp4", 300)
    finally:
        await storage.close()

    assert url is not None and url.startswith(f"{public.url}/")
    assert "X-Amz-Signature=" in url and "AWSAccessKeyId=" not in url
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(b"presigned body").digest()


async def test_a_part_failing_while_others_are_in_flight_aborts_the_upload(
    s3_endpoint: str,
) -> None:
    part_size = 5 * MiB
    storage = S3Storage(
        f"strict-{uuid.uuid4().hex[:16]}",
        "env/test",
        endpoint_url=s3_endpoint,
        access_key_id="test",
        secret_access_key="test",
        part_size=part_size,
    )
    await storage.ensure_bucket()
    read = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal read
        for index in range(12 * part_size // MiB):
            read += 1
            yield index.to_bytes(4, "big") * (MiB // 4)

    with RefusingProxy(s3_endpoint) as proxy:
        proxy.refuse_part = 2  # refused once part 3 is on its way too
        behind = S3Storage(
            storage.bucket,
            "env/test",
            endpoint_url=proxy.url,
            access_key_id="test",
            secret_access_key="test",
            part_size=part_size,
        )
        try:
            with pytest.raises(StorageError, match="AccessDenied"):
                await behind.put_stream("videos/part-fails.mp4", source(), "video/mp4")
        finally:
            await behind.close()

    puts = [s.target for s in proxy.seen if s.method == "PUT" and "partNumber=" in s.target]
    assert any("partNumber=3" in t for t in puts)  # in flight when part 2 failed
    assert [s.refused for s in proxy.seen if "partNumber=2&" in s.target + "&"] == ["AccessDenied"]
    aborts = [s for s in proxy.seen if s.method == "DELETE" and "uploadId=" in s.target]
    assert len(aborts) == 1 and aborts[0].refused is None
    assert read < 12 * part_size // MiB  # the stream stopped being read
    client = s3_client(s3_endpoint)
    assert client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", []) == []
    assert await storage.stat("videos/part-fails.mp4") is None
    await storage.close()
