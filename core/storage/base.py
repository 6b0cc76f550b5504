"""The storage contract shared by the API (serving videos) and the workers (storing them)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Protocol

DEFAULT_CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str
    content_type: str


class StorageError(Exception):
    """Storage is unusable for this operation (misconfiguration, permission, bad request)."""


class TransientStorageError(StorageError):
    """Network trouble, a 5xx or throttling: the same call may succeed later."""


class ObjectNotFound(StorageError):
    """No object under this key."""


class Storage(Protocol):
    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject:
        """Store the chunks under ``key`` with bounded memory, replacing any previous object.

        Nothing is visible under ``key`` unless the whole stream was stored; an error from
        ``chunks`` (or cancellation) propagates after the partial upload is discarded.
        """
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject: ...

    async def open_stream(
        self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        """Open the object (raising ObjectNotFound now) and return an iterator over its bytes.

        Iterate it to the end or ``aclose()`` it (``contextlib.aclosing``) to release the
        connection or file.
        """
        ...

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        """Bytes ``[start, start + length)`` of the object, for random access (MP4 probing).

        Fewer bytes only where the object ends, none from its end on. Raises
        ObjectNotFound if there is no object, ValueError for a negative start or length.
        """
        ...

    async def stat(self, key: str) -> int | None:
        """The object's size, or None if there is none."""
        ...

    async def presigned_url(self, key: str, expires_in: int) -> str | None:
        """A time-limited GET URL, or None when the backend cannot make one (local disk)."""
        ...

    async def delete(self, key: str) -> None:
        """Delete the object; a missing object is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with the (non-empty) prefix; return the count."""
        ...

    async def check(self) -> None:
        """Readiness probe: raise StorageError if the backend is unusable."""
        ...

    async def close(self) -> None: ...


def check_key(key: str) -> str:
    """Reject keys that are empty, absolute or could escape a directory root."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"invalid storage key {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"invalid storage key {key!r}")
    return key


def check_range(start: int, length: int) -> None:
    """Reject a negative byte range (``read_range``)."""
    if start < 0 or length < 0:
        raise ValueError(f"invalid byte range: start={start}, length={length}")


def check_prefix(prefix: str) -> str:
    """A delete prefix: a key or the start of one, never empty (that would mean everything)."""
    if not prefix:
        raise ValueError("refusing to delete with an empty prefix")
    check_key(prefix.removesuffix("/"))
    return prefix
