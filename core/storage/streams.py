"""Byte-stream plumbing shared by the backends and the store job: cap and slice chunks
(regrouping and hashing: ``core.storage.blocks``)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator


class StreamTooLarge(Exception):
    """A stream is longer than its cap: ``size`` is the length its source declared, or
    (``declared`` false) the count reached with the chunk that crossed the cap."""

    def __init__(self, limit: int, size: int, *, declared: bool) -> None:
        self.limit = limit
        self.size = size
        self.declared = declared
        if declared:
            detail = f"the upstream declared {size} bytes"
        else:
            detail = "more arrived, and the download was stopped there"
        super().__init__(f"The video is larger than the maximum of {limit} bytes: {detail}.")


def refuse_declared(length: int | None, limit: int) -> None:
    """Raise StreamTooLarge now if a declared ``length`` (None: not declared) exceeds ``limit``.

    Only a shortcut: a length may be absent or wrong, so the stream is ``capped`` as well.
    """
    if length is not None and length > limit:
        raise StreamTooLarge(limit, length, declared=True)


async def capped(chunks: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    """Pass ``chunks`` through while their total stays within ``limit`` bytes.

    The chunk that would carry the total past ``limit`` is not passed on: StreamTooLarge
    is raised instead, so a consumer never receives more than ``limit`` bytes and a
    stream of exactly ``limit`` bytes passes whole.
    """
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise StreamTooLarge(limit, total, declared=False)
        yield chunk


async def iter_chunks(data: bytes, chunk_size: int) -> AsyncIterator[bytes]:
    """``data`` as an async stream of slices, to feed put_stream."""
    if len(data) <= chunk_size:
        yield data
        return
    view = memoryview(data)
    for start in range(0, len(data), chunk_size):
        yield bytes(view[start : start + chunk_size])
