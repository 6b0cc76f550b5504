from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from core.storage.streams import Digest, iter_chunks, rechunk, take


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


@pytest.mark.parametrize(
    ("parts", "blocks"),
    [
        ([], []),
        ([b"ab", b"", b"c"], [b"abc"]),
        ([b"abcd"], [b"abcd"]),
        ([b"abcdefghij"], [b"abcd", b"efgh", b"ij"]),
        ([b"a", b"bcdef", b"gh"], [b"abcd", b"efgh"]),
    ],
)
async def test_rechunk_makes_fixed_size_blocks_with_a_short_tail(
    parts: list[bytes], blocks: list[bytes]
) -> None:
    assert await _collect(rechunk(_chunks(*parts), 4)) == blocks


async def test_digest_counts_and_hashes_what_passes_through() -> None:
    digest = Digest()

    data = b"".join(await _collect(digest.tap(_chunks(b"hello ", b"world"))))

    assert (digest.size, digest.sha256) == (11, hashlib.sha256(b"hello world").hexdigest())
    assert data == b"hello world"


def test_take_removes_the_head_of_the_buffer() -> None:
    buffer = bytearray(b"abcdef")

    assert take(buffer, 4) == b"abcd"
    assert buffer == b"ef"


async def test_iter_chunks_slices_bytes() -> None:
    assert await _collect(iter_chunks(b"abcdefg", 3)) == [b"abc", b"def", b"g"]
    assert await _collect(iter_chunks(b"", 3)) == [b""]
