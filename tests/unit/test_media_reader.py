from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest

from core.media.reader import RangeReader, ReadCancelled, read_object
from core.storage import LocalStorage, ObjectNotFound, TransientStorageError

DATA = os.urandom(1_000_000)


class Recording:
    """fetch() over DATA that records each range asked for."""

    def __init__(self, data: bytes = DATA) -> None:
        self.data = data
        self.ranges: list[tuple[int, int]] = []

    def __call__(self, start: int, length: int) -> bytes:
        self.ranges.append((start, length))
        return self.data[start : start + length]


def _reader(fetch: Recording, **kwargs: int) -> RangeReader:
    return RangeReader(len(fetch.data), fetch, **kwargs)


def test_reads_and_seeks_return_the_same_bytes_as_a_file() -> None:
    reader = _reader(Recording())
    plain = io.BytesIO(DATA)
    steps = [(0, 0, 100), (5000, 0, 70_000), (-10, 2, 50), (-300_000, 1, 32_768), (999_990, 0, 64)]
    for offset, whence, size in steps:
        assert reader.seek(offset, whence) == plain.seek(offset, whence)
        assert reader.read_at(reader.tell(), size) == plain.read(size)
        assert reader.tell() == plain.tell()


def test_read_at_or_past_the_end_is_empty() -> None:
    reader = _reader(Recording())

    reader.seek(len(DATA) + 10)

    assert reader.read(100) == b""
    assert reader.read_at(len(DATA) - 3, 100) == DATA[-3:]


def test_sequential_reads_double_the_window_and_a_seek_resets_it() -> None:
    fetch = Recording()
    reader = _reader(fetch, min_window=1000, max_window=8000)

    while reader.tell() < 40_000:
        reader.read(500)
    reader.seek(500_000)
    reader.read(500)

    lengths = [length for _, length in fetch.ranges]
    assert lengths == [1000, 2000, 4000, 8000, 8000, 8000, 8000, 8000, 1000]
    assert reader.requests == len(lengths)
    assert reader.bytes_read == sum(lengths)


def test_a_read_larger_than_the_window_is_fetched_whole() -> None:
    fetch = Recording()
    reader = _reader(fetch, min_window=1000, max_window=8000)

    assert reader.read(50_000) == DATA[:50_000]
    assert fetch.ranges == [(0, 50_000)]


def test_a_failed_fetch_is_raised_and_kept() -> None:
    def failing(start: int, length: int) -> bytes:
        raise TransientStorageError("S3 GetObject: SlowDown")

    reader = RangeReader(100, failing)

    with pytest.raises(TransientStorageError):
        reader.read(10)
    assert isinstance(reader.failure, TransientStorageError)
    with pytest.raises(TransientStorageError):
        reader.raise_failure()


def test_cancel_stops_the_next_fetch() -> None:
    fetch = Recording()
    reader = _reader(fetch, min_window=1000)
    reader.read(10)

    reader.cancel()

    assert reader.read(10) == DATA[10:20]  # still in the window: no fetch needed
    with pytest.raises(ReadCancelled):
        reader.read_at(500_000, 10)
    assert len(fetch.ranges) == 1


async def test_read_object_reads_the_stored_object_in_a_thread(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put_bytes("videos/t/video.mp4", DATA, "video/mp4")

    def work(reader: RangeReader) -> bytes:
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()  # not on the event loop's thread
        return reader.read_at(123_456, 300_000)

    assert await read_object(storage, "videos/t/video.mp4", work) == DATA[123_456:423_456]


async def test_read_object_of_a_missing_key_raises_object_not_found(tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        await read_object(LocalStorage(tmp_path), "videos/none/video.mp4", lambda reader: None)
