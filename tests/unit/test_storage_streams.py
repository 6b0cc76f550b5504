from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from core.storage.streams import (
    Digest,
    StreamTooLarge,
    capped,
    iter_chunks,
    rechunk,
    refuse_declared,
    take,
)


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


async def test_capped_passes_a_stream_of_exactly_the_cap() -> None:
    assert await _collect(capped(_chunks(b"abc", b"", b"de"), 5)) == [b"abc", b"", b"de"]


async def test_capped_stops_before_the_chunk_that_passes_the_cap() -> None:
    passed: list[bytes] = []

    with pytest.raises(StreamTooLarge) as caught:
        async for chunk in capped(_chunks(b"abc", b"de", b"f", b"never read"), 5):
            passed.append(chunk)

    assert passed == [b"abc", b"de"]  # the cap's 5 bytes, not one more
    assert (caught.value.limit, caught.value.size, caught.value.declared) == (5, 6, False)
    assert "larger than the maximum of 5 bytes" in str(caught.value)


async def test_capped_refuses_a_single_chunk_larger_than_the_cap() -> None:
    with pytest.raises(StreamTooLarge):
        await _collect(capped(_chunks(b"abcdef"), 5))


def test_refuse_declared_only_beyond_the_cap() -> None:
    refuse_declared(None, 5)
    refuse_declared(5, 5)
    with pytest.raises(StreamTooLarge) as caught:
        refuse_declared(6, 5)
    assert (caught.value.size, caught.value.declared) == (6, True)
    assert "declared 6 bytes" in str(caught.value)
