from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.storage import LocalStorage, ObjectNotFound, StorageError, open_storage
from core.storage.streams import StreamTooLarge, capped


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _read_all(storage: LocalStorage, key: str, chunk_size: int = 1 << 20) -> bytes:
    return b"".join([chunk async for chunk in await storage.open_stream(key, chunk_size)])


def _leftovers(root: Path) -> list[Path]:
    return [path for path in (root / ".tmp").glob("*") if path.is_file()]


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects")


async def test_put_stream_records_size_and_sha256(storage: LocalStorage) -> None:
    parts = [b"a" * 1000, b"", b"b" * (3 << 20)]
    data = b"".join(parts)

    stored = await storage.put_stream("videos/v1.mp4", _chunks(*parts), "video/mp4")

    assert stored.key == "videos/v1.mp4"
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.content_type == "video/mp4"
    assert (storage.root / "videos" / "v1.mp4").read_bytes() == data


async def test_put_bytes_round_trips_through_open_stream(storage: LocalStorage) -> None:
    data = bytes(range(256)) * 1000
    stored = await storage.put_bytes("images/i1.png", data, "image/png")

    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await _read_all(storage, "images/i1.png", chunk_size=4096) == data


async def test_empty_object_is_stored(storage: LocalStorage) -> None:
    stored = await storage.put_bytes("empty", b"", "application/octet-stream")

    assert stored.size == 0
    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert await storage.stat("empty") == 0


async def test_put_overwrites_same_key(storage: LocalStorage) -> None:
    await storage.put_bytes("videos/v1.mp4", b"first version", "video/mp4")
    stored = await storage.put_bytes("videos/v1.mp4", b"second", "video/mp4")

    assert stored.size == 6
    assert await _read_all(storage, "videos/v1.mp4") == b"second"


async def test_failed_stream_leaves_previous_object_and_no_temp_file(
    storage: LocalStorage,
) -> None:
    await storage.put_bytes("videos/v1.mp4", b"good", "video/mp4")

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (2 << 20)
        raise ConnectionResetError("upstream went away")

    with pytest.raises(ConnectionResetError):
        await storage.put_stream("videos/v1.mp4", broken(), "video/mp4")

    assert await _read_all(storage, "videos/v1.mp4") == b"good"
    assert _leftovers(storage.root) == []


async def test_cancelled_stream_stores_nothing(storage: LocalStorage) -> None:
    started = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield b"x" * (2 << 20)
        started.set()
        await asyncio.Event().wait()
        yield b""

    task = asyncio.create_task(storage.put_stream("videos/v2.mp4", stalls(), "video/mp4"))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert await storage.stat("videos/v2.mp4") is None
    assert _leftovers(storage.root) == []


async def test_stream_past_its_cap_stores_nothing(storage: LocalStorage) -> None:
    big = [b"x" * (1 << 20)] * 3  # two blocks reach the temp file, the third passes the cap

    with pytest.raises(StreamTooLarge):
        await storage.put_stream("videos/v1/video.mp4", capped(_chunks(*big), 2 << 20), "video/mp4")

    assert await storage.stat("videos/v1/video.mp4") is None
    assert _leftovers(storage.root) == []
    exact = await storage.put_stream(
        "videos/v2/video.mp4", capped(_chunks(*big), 3 << 20), "video/mp4"
    )
    assert exact.size == 3 << 20


async def test_open_stream_of_missing_key_raises_object_not_found(storage: LocalStorage) -> None:
    with pytest.raises(ObjectNotFound):
        await storage.open_stream("videos/missing.mp4")


async def test_read_range_returns_the_bytes_asked_for(storage: LocalStorage) -> None:
    data = bytes(range(256)) * 40
    await storage.put_bytes("videos/v1/video.mp4", data, "video/mp4")

    assert await storage.read_range("videos/v1/video.mp4", 1000, 300) == data[1000:1300]
    assert await storage.read_range("videos/v1/video.mp4", 0, 0) == b""


async def test_read_range_is_short_at_the_end_and_empty_past_it(storage: LocalStorage) -> None:
    await storage.put_bytes("v", b"0123456789", "video/mp4")

    assert await storage.read_range("v", 7, 100) == b"789"
    assert await storage.read_range("v", 10, 5) == b""
    assert await storage.read_range("v", 50, 5) == b""


async def test_read_range_of_missing_key_raises_object_not_found(storage: LocalStorage) -> None:
    with pytest.raises(ObjectNotFound):
        await storage.read_range("videos/missing.mp4", 0, 10)


@pytest.mark.parametrize(("start", "length"), [(-1, 10), (0, -1)])
async def test_read_range_rejects_a_negative_range(
    storage: LocalStorage, start: int, length: int
) -> None:
    await storage.put_bytes("v", b"0123456789", "video/mp4")

    with pytest.raises(ValueError, match="invalid byte range"):
        await storage.read_range("v", start, length)


async def test_stat_returns_size_or_none(storage: LocalStorage) -> None:
    await storage.put_bytes("a/b", b"12345", "text/plain")

    assert await storage.stat("a/b") == 5
    assert await storage.stat("a/missing") is None
    assert await storage.stat("a") is None  # a directory is not an object


async def test_delete_removes_object_and_tolerates_missing(storage: LocalStorage) -> None:
    await storage.put_bytes("videos/v1/video.mp4", b"x", "video/mp4")

    await storage.delete("videos/v1/video.mp4")
    await storage.delete("videos/v1/video.mp4")

    assert await storage.stat("videos/v1/video.mp4") is None
    assert not (storage.root / "videos").exists()  # empty directories are pruned


async def test_delete_prefix_deletes_only_matching_keys(storage: LocalStorage) -> None:
    for key in ("videos/v1/a.mp4", "videos/v1/thumbs/1.jpg", "videos/v10/a.mp4", "other/x"):
        await storage.put_bytes(key, b"x", "application/octet-stream")

    assert await storage.delete_prefix("videos/v1/") == 2
    assert await storage.stat("videos/v10/a.mp4") == 1
    assert await storage.stat("other/x") == 1
    assert await storage.delete_prefix("videos/v") == 1
    assert await storage.delete_prefix("videos/") == 0


async def test_delete_prefix_rejects_empty_prefix(storage: LocalStorage) -> None:
    with pytest.raises(ValueError, match="empty prefix"):
        await storage.delete_prefix("")


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../outside", "a/../../outside", "a//b", "./a", "a\\b", ".tmp/x"]
)
async def test_keys_that_could_escape_root_are_rejected(storage: LocalStorage, key: str) -> None:
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.put_bytes(key, b"x", "text/plain")
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.stat(key)


async def test_presigned_url_is_none(storage: LocalStorage) -> None:
    assert await storage.presigned_url("videos/v1.mp4", 60) is None


async def test_check_creates_root(storage: LocalStorage) -> None:
    await storage.check()
    assert storage.root.is_dir()


async def test_check_fails_when_root_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StorageError):
        await LocalStorage(tmp_path / "file").check()


async def test_open_storage_parses_file_url(tmp_path: Path) -> None:
    storage = open_storage((tmp_path / "with space").as_uri())

    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "with space"


async def test_open_stream_can_be_closed_before_the_end(storage: LocalStorage) -> None:
    await storage.put_bytes("videos/v1.mp4", b"x" * 100, "video/mp4")

    async with contextlib.aclosing(await storage.open_stream("videos/v1.mp4", 10)) as stream:
        assert await anext(stream) == b"x" * 10

    await storage.delete("videos/v1.mp4")
    assert await storage.stat("videos/v1.mp4") is None
