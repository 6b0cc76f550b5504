"""Object storage for videos and uploaded images: local disk or S3-compatible."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from core.storage.base import (
    ObjectNotFound,
    Storage,
    StorageError,
    StoredObject,
    TransientStorageError,
)
from core.storage.local import LocalStorage
from core.storage.s3 import AddressingStyle, S3Storage
from core.storage.s3_checksums import ChecksumAlgorithm

__all__ = [
    "LocalStorage",
    "ObjectNotFound",
    "S3Storage",
    "Storage",
    "StorageError",
    "StoredObject",
    "TransientStorageError",
    "open_storage",
]


def open_storage(
    url: str,
    *,
    endpoint_url: str | None = None,
    public_endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    addressing_style: AddressingStyle | None = None,
    checksum_algorithm: ChecksumAlgorithm | None = None,
) -> Storage:
    """``file:///absolute/dir`` → LocalStorage; ``s3://bucket/optional/prefix`` → S3Storage
    (the keyword arguments are S3Storage's; local disk ignores them)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"storage URL {url!r} must be absolute: file:///path/to/dir")
        return LocalStorage(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"storage URL {url!r} has no bucket: s3://bucket/optional/prefix")
        return S3Storage(
            parts.netloc,
            unquote(parts.path),
            endpoint_url=endpoint_url,
            public_endpoint_url=public_endpoint_url,
            region=region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            addressing_style=addressing_style,
            checksum_algorithm=checksum_algorithm,
        )
    raise ValueError(
        f"unsupported storage URL {url!r}: expected file:///absolute/path or s3://bucket/prefix"
    )
