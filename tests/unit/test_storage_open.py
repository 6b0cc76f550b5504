from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from core.bootstrap import storage_from
from core.storage import S3Storage, open_storage
from schemas.settings import Settings


def test_s3_url_gives_bucket_and_normalised_prefix() -> None:
    storage = open_storage("s3://videos-bucket/env/prod/", endpoint_url="http://127.0.0.1:1")

    assert isinstance(storage, S3Storage)
    assert storage.bucket == "videos-bucket"
    assert storage.prefix == "env/prod/"


def test_s3_url_without_prefix_has_empty_prefix() -> None:
    storage = open_storage("s3://videos-bucket", region="eu-west-1")

    assert isinstance(storage, S3Storage)
    assert storage.prefix == ""
    assert storage.region == "eu-west-1"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3:///prefix", "no bucket"),
        ("file://relative/dir", "must be absolute"),
        ("gs://bucket", "unsupported storage URL"),
        ("/var/lib/videos", "unsupported storage URL"),
    ],
)
def test_bad_urls_are_rejected_with_a_clear_message(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_storage(url)


def test_part_size_below_s3_minimum_is_rejected() -> None:
    with pytest.raises(ValueError, match="part_size"):
        S3Storage("bucket", part_size=1024)


def _settings(**s3: Any) -> Settings:
    return Settings(
        storage_url="s3://videos-bucket/env",
        s3_access_key_id="AKIDEXAMPLE",
        s3_secret_access_key="wJalrXUtnFEMI",
        **s3,
    )


@pytest.mark.parametrize("region", [None, "us-east-1", "eu-west-1"])
async def test_presigned_urls_are_sigv4_whatever_the_region(region: str | None) -> None:
    extra = {"s3_region": region} if region else {}
    storage = storage_from(_settings(s3_endpoint_url="http://10.0.0.5:9000", **extra))
    try:
        url = await storage.presigned_url("videos/v1/video.mp4", 60)
    finally:
        await storage.close()

    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and "X-Amz-Signature" in query
    assert f"/{region or 'us-east-1'}/s3/aws4_request" in query["X-Amz-Credential"][0]
    assert "AWSAccessKeyId" not in query


async def test_presigned_urls_use_the_public_endpoint_and_its_addressing() -> None:
    storage = storage_from(
        _settings(
            s3_endpoint_url="http://minio.internal:9000",
            s3_public_endpoint_url="https://media.example.com",
            s3_addressing_style="virtual",
        )
    )
    try:
        url = await storage.presigned_url("videos/v1/video.mp4", 60)
    finally:
        await storage.close()

    assert url is not None
    assert url.startswith("https://videos-bucket.media.example.com/env/videos/v1/video.mp4?")


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("path", "https://s3.eu-west-1.amazonaws.com/videos-bucket/env/k?"),
        ("virtual", "https://videos-bucket.s3.eu-west-1.amazonaws.com/env/k?"),
    ],
)
async def test_addressing_style_comes_from_the_settings(style: str, expected: str) -> None:
    storage = storage_from(_settings(s3_region="eu-west-1", s3_addressing_style=style))
    try:
        url = await storage.presigned_url("k", 60)
    finally:
        await storage.close()

    assert url is not None and url.startswith(expected)


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("crc32", "CRC32")])
async def test_the_checksum_algorithm_comes_from_the_settings(
    value: str | None, expected: str | None
) -> None:
    storage = storage_from(_settings(s3_checksum_algorithm=value))
    try:
        assert isinstance(storage, S3Storage) and storage.checksum_algorithm == expected
    finally:
        await storage.close()
