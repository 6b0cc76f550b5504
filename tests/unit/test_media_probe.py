from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core.media import InvalidVideo, VideoFacts, probe
from core.storage import LocalStorage, ObjectNotFound, TransientStorageError
from core.storage.keys import video_key
from tests.mp4s import faststart, moov_first, top_level_boxes, write_audio_only, write_mp4

LAYOUTS = ["moov-last", "faststart"]
KEY = video_key("task_1")


def _mp4(directory: Path, layout: str, **kwargs: object) -> bytes:
    path = write_mp4(directory / "moov-last.mp4", **kwargs)  # type: ignore[arg-type]
    if layout == "faststart":
        path = faststart(path, directory / "faststart.mp4")
    data = path.read_bytes()
    assert moov_first(data) == (layout == "faststart")
    return data


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects")


class CountingStorage:
    """The real storage, counting the bytes read through read_range."""

    def __init__(self, inner: LocalStorage) -> None:
        self.inner = inner
        self.bytes_read = 0

    async def stat(self, key: str) -> int | None:
        return await self.inner.stat(key)

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        data = await self.inner.read_range(key, start, length)
        self.bytes_read += len(data)
        return data


class FailingStorage(CountingStorage):
    """The real storage, whose read number ``fail_at`` (counting from 1) fails transiently."""

    def __init__(self, inner: LocalStorage, fail_at: int) -> None:
        super().__init__(inner)
        self.fail_at = fail_at
        self.reads = 0

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        self.reads += 1
        if self.reads == self.fail_at:
            raise TransientStorageError("S3 GetObject: SlowDown")
        return await super().read_range(key, start, length)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    ("width", "height"), [(320, 180), (180, 320)], ids=["landscape", "portrait"]
)
@pytest.mark.parametrize("audio", [False, True], ids=["silent", "audio"])
async def test_probe_measures_the_stored_video(
    storage: LocalStorage, tmp_path: Path, layout: str, width: int, height: int, audio: bool
) -> None:
    data = _mp4(tmp_path, layout, width=width, height=height, seconds=2, fps=24, audio=audio)
    await storage.put_bytes(KEY, data, "video/mp4")

    facts = await probe(storage, KEY)

    assert facts == VideoFacts(
        duration_ms=2000,
        width=width,
        height=height,
        fps=24.0,
        codec="h264",
        has_audio=audio,
        size=len(data),
    )


@pytest.mark.parametrize("rotation", [90, -90])
async def test_a_quarter_turn_display_rotation_swaps_width_and_height(
    storage: LocalStorage, tmp_path: Path, rotation: int
) -> None:
    await storage.put_bytes(KEY, _mp4(tmp_path, "moov-last", rotation=rotation), "video/mp4")

    facts = await probe(storage, KEY)

    assert (facts.width, facts.height) == (180, 320)


async def test_probe_reports_frame_rate_and_fractional_duration(
    storage: LocalStorage, tmp_path: Path
) -> None:
    await storage.put_bytes(KEY, _mp4(tmp_path, "faststart", seconds=1.5, fps=30), "video/mp4")

    facts = await probe(storage, KEY)

    assert (facts.duration_ms, facts.fps) == (1500, 30.0)


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_probe_reads_a_small_part_of_the_file_wherever_moov_is(
    storage: LocalStorage, tmp_path: Path, layout: str
) -> None:
    data = _mp4(tmp_path, layout, seconds=4, noise=True)  # ~8 MB of incompressible frames
    await storage.put_bytes(KEY, data, "video/mp4")
    counting = CountingStorage(storage)

    await probe(counting, KEY)  # type: ignore[arg-type]

    assert counting.bytes_read < len(data) / 10


CUTS = [0.0005, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("cut", CUTS)
async def test_a_truncated_file_is_invalid(
    storage: LocalStorage, tmp_path: Path, layout: str, cut: float
) -> None:
    data = _mp4(tmp_path, layout, audio=True)
    await storage.put_bytes(KEY, data[: int(len(data) * cut)], "video/mp4")

    with pytest.raises(InvalidVideo):
        await probe(storage, KEY)


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_a_file_missing_only_its_last_byte_is_invalid(
    storage: LocalStorage, tmp_path: Path, layout: str
) -> None:
    await storage.put_bytes(KEY, _mp4(tmp_path, layout, audio=True)[:-1], "video/mp4")

    with pytest.raises(InvalidVideo, match="truncated"):
        await probe(storage, KEY)


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_a_file_cut_where_its_last_box_starts_is_invalid(
    storage: LocalStorage, tmp_path: Path, layout: str
) -> None:
    # moov-last loses its moov; faststart loses the media data its moov points into.
    data = _mp4(tmp_path, layout, audio=True)
    last_offset, _, _ = top_level_boxes(data)[-1]
    await storage.put_bytes(KEY, data[:last_offset], "video/mp4")

    with pytest.raises(InvalidVideo, match=r"moov|truncated"):
        await probe(storage, KEY)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        os.urandom(64 * 1024),
        b"\x00\x00\x00\x18ftypisom" + os.urandom(64 * 1024),
        b"\x89PNG\r\n\x1a\n" + os.urandom(1024),
        b"<html><body>502 Bad Gateway</body></html>",
    ],
    ids=["empty", "one-byte", "random", "ftyp-then-random", "png", "html"],
)
async def test_bytes_that_are_not_an_mp4_are_invalid(storage: LocalStorage, data: bytes) -> None:
    await storage.put_bytes(KEY, data, "video/mp4")

    with pytest.raises(InvalidVideo):
        await probe(storage, KEY)


async def test_media_data_that_does_not_decode_is_invalid(
    storage: LocalStorage, tmp_path: Path
) -> None:
    data = bytearray(_mp4(tmp_path, "faststart"))
    offset, size = next((o, s) for o, s, kind in top_level_boxes(data) if kind == b"mdat")
    data[offset + 8 : offset + size] = bytes(size - 8)
    await storage.put_bytes(KEY, bytes(data), "video/mp4")

    with pytest.raises(InvalidVideo, match="decod"):
        await probe(storage, KEY)


async def test_an_audio_only_mp4_is_invalid(storage: LocalStorage, tmp_path: Path) -> None:
    data = write_audio_only(tmp_path / "audio.mp4").read_bytes()
    await storage.put_bytes(KEY, data, "video/mp4")

    with pytest.raises(InvalidVideo, match="no video stream"):
        await probe(storage, KEY)


async def test_probe_of_a_missing_object_raises_object_not_found(storage: LocalStorage) -> None:
    with pytest.raises(ObjectNotFound):
        await probe(storage, KEY)


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4])
async def test_a_failed_read_is_a_storage_error_not_an_invalid_video(
    storage: LocalStorage, tmp_path: Path, fail_at: int
) -> None:
    await storage.put_bytes(KEY, _mp4(tmp_path, "moov-last", seconds=4, noise=True), "video/mp4")
    failing = FailingStorage(storage, fail_at)

    with pytest.raises(TransientStorageError):
        await probe(failing, KEY)  # type: ignore[arg-type]
    assert failing.reads >= fail_at


def test_more_concurrent_probes_than_default_executor_threads_all_finish(tmp_path: Path) -> None:
    # Local reads run on the default executor: decoding there too would deadlock.
    storage = LocalStorage(tmp_path / "objects")

    async def main() -> list[VideoFacts]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(2))
        await storage.put_bytes(KEY, _mp4(tmp_path, "moov-last"), "video/mp4")
        probes = [probe(storage, KEY) for _ in range(6)]
        return await asyncio.wait_for(asyncio.gather(*probes), timeout=60)

    facts = asyncio.run(main())

    assert len({(f.width, f.height, f.duration_ms) for f in facts}) == 1
