"""Byte-stream plumbing shared by the backends: measure, hash and regroup chunks."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, AsyncIterator


class Digest:
    """Counts and hashes the bytes that stream through ``tap()``."""

    def __init__(self) -> None:
        self.size = 0
        self._sha256 = hashlib.sha256()

    async def tap(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self._sha256.update(chunk)
            self.size += len(chunk)
            yield chunk

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


async def rechunk(chunks: AsyncIterator[bytes], size: int) -> AsyncGenerator[bytes, None]:
    """Regroup a stream into blocks of exactly ``size`` bytes; the last may be shorter.

    An empty stream yields nothing. At most one block plus one chunk is buffered.
    """
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield take(buffer, size)
    if buffer:
        yield bytes(buffer)


def take(buffer: bytearray, size: int) -> bytes:
    """Remove and return the first ``size`` bytes of ``buffer``, copying them once."""
    with memoryview(buffer) as view, view[:size] as head:
        block = bytes(head)
    del buffer[:size]
    return block


async def iter_chunks(data: bytes, chunk_size: int) -> AsyncIterator[bytes]:
    """``data`` as an async stream of slices, to feed put_stream."""
    if len(data) <= chunk_size:
        yield data
        return
    view = memoryview(data)
    for start in range(0, len(data), chunk_size):
        yield bytes(view[start : start + chunk_size])
