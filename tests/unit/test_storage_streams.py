from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest

from core.storage.blocks import Blocks
from core.storage.streams import StreamTooLarge, capped, iter_chunks, refuse_declared


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


@pytest.mark.parametrize(
    ("parts", "blocks"),
    [
        ([], [b""]),
        ([b"ab", b"", b"c"], [b"abc"]),
        ([b"abcd"], [b"abcd"]),
        ([b"abcdefghij"], [b"abcd", b"efgh", b"ij"]),
        ([b"a", b"bcdef", b"gh"], [b"abcd", b"efgh"]),
    ],
)
async def test_blocks_are_fixed_size_with_a_short_last_one_and_hashed(
    parts: list[bytes], blocks: list[bytes]
) -> None:
    splitter = Blocks(4, 2)
    seen: list[tuple[int, bytes, bool]] = []

    async for block in splitter.split(_chunks(*parts)):
        seen.append((block.offset, bytes(block.body()), block.last))
        await splitter.release(block)

    data = b"".join(parts)
    offsets = [sum(map(len, blocks[:i])) for i in range(len(blocks))]
    lasts = [i == len(blocks) - 1 for i in range(len(blocks))]
    assert seen == list(zip(offsets, blocks, lasts, strict=True))
    assert (splitter.size, await splitter.sha256()) == (len(data), hashlib.sha256(data).hexdigest())


async def test_blocks_wait_for_a_released_buffer_beyond_their_count() -> None:
    handed: list[bytes] = []

    async def source() -> AsyncIterator[bytes]:
        for part in (b"ab", b"cd", b"ef", b"gh"):
            handed.append(part)
            yield part

    splitter = Blocks(2, 2)
    parts = splitter.split(source())
    first = await anext(parts)
    second = await anext(parts)
    third = asyncio.ensure_future(anext(parts))
    for _ in range(10):  # loop turns, not time: nothing but a released buffer can wake it
        await asyncio.sleep(0)

    assert (not third.done(), handed) == (True, [b"ab", b"cd", b"ef"])
    await splitter.release(first)
    block = await third

    assert (bytes(block.view), block.buffer is first.buffer) == (b"ef", True)
    await splitter.release(second)
    await splitter.release(block)
    await parts.aclose()


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
