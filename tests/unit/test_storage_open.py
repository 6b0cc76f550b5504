from __future__ import annotations

import pytest

from core.storage import S3Storage, open_storage


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
