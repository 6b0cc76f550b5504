import struct

from simulator.files import CHUNK_SIZE, free_box_header, padding_for, stream_mp4


def test_padding_fills_up_to_the_target_or_is_skipped_when_too_small():
    assert padding_for(1000, None) == 0
    assert padding_for(1000, 2000) == 1000
    assert padding_for(1000, 1008) == 8
    assert padding_for(1000, 1007) == 0
    assert padding_for(1000, 10) == 0


def test_free_box_header_uses_largesize_beyond_32_bits():
    assert free_box_header(100) == struct.pack(">I4s", 100, b"free")
    big = 5 * 2**32
    assert free_box_header(big) == struct.pack(">I4sQ", 1, b"free", big)


async def test_stream_is_the_video_then_a_free_box_of_exactly_the_padding():
    video = b"V" * (CHUNK_SIZE + 10)
    body = b"".join([chunk async for chunk in stream_mp4(video, 100_000)])
    assert body[: len(video)] == video
    assert body[len(video) : len(video) + 8] == struct.pack(">I4s", 100_000, b"free")
    assert len(body) == len(video) + 100_000
    assert body[len(video) + 8 :] == bytes(100_000 - 8)


async def test_large_padding_streams_in_bounded_chunks():
    total = 0
    largest = 0
    async for chunk in stream_mp4(b"tiny", 200 * 1024 * 1024):
        total += len(chunk)
        largest = max(largest, len(chunk))
    assert total == 4 + 200 * 1024 * 1024
    assert largest <= CHUNK_SIZE
