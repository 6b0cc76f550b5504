"""Objects as files under a directory: the embedded default, and handy in tests."""

from __future__ import annotations

import asyncio
import functools
import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from pathlib import Path
from typing import BinaryIO, ParamSpec, TypeVar

from core.storage.base import (
    DEFAULT_CHUNK_SIZE,
    ObjectNotFound,
    StorageError,
    StoredObject,
    check_key,
    check_prefix,
    check_range,
)
from core.storage.blocks import Blocks
from core.storage.streams import iter_chunks

P = ParamSpec("P")
T = TypeVar("T")

TMP_DIR = ".tmp"
# Few large writes (each one thread hop), one writing while the next block fills: a file
# is written in order, so more in flight would only queue.
WRITE_SIZE = 4 << 20
WRITES_IN_FLIGHT = 1


async def _io(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking file I/O in a thread; OS failures become StorageError."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except OSError as exc:
        raise StorageError(f"local storage: {exc}") from exc


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self._tmp_dir = self.root / TMP_DIR

    def _path(self, key: str) -> Path:
        check_key(key)
        if key.split("/", 1)[0] == TMP_DIR:
            raise ValueError(f"invalid storage key {key!r}: {TMP_DIR}/ is reserved")
        return self.root / key

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject:
        path = self._path(key)
        blocks = Blocks(WRITE_SIZE, WRITES_IN_FLIGHT + 1)
        temp = await _TempFile.create(self._tmp_dir)
        try:
            async with aclosing(blocks.split(chunks)) as parts:
                async for block in parts:
                    await temp.write(block.view, functools.partial(blocks.release, block))
            await temp.commit(path)
            sha256 = await blocks.sha256()
        except BaseException:
            await asyncio.shield(temp.discard())
            await asyncio.shield(blocks.settle())
            raise
        return StoredObject(key, blocks.size, sha256, content_type)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        return await self.put_stream(key, iter_chunks(data, WRITE_SIZE), content_type)

    async def open_stream(
        self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        path = self._path(key)
        try:
            file = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"local storage: {exc}") from exc
        return _read_file(file, chunk_size)

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        path = self._path(key)
        check_range(start, length)
        try:
            return await asyncio.to_thread(_read_range, path, start, length)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"local storage: {exc}") from exc

    async def stat(self, key: str) -> int | None:
        return await _io(_file_size, self._path(key))

    async def presigned_url(self, key: str, expires_in: int) -> str | None:
        return None

    async def delete(self, key: str) -> None:
        await _io(self._delete_sync, self._path(key))

    async def delete_prefix(self, prefix: str) -> int:
        check_prefix(prefix)
        return await _io(self._delete_prefix_sync, prefix)

    async def check(self) -> None:
        await _io(self._check_sync)

    async def close(self) -> None:
        return None

    def _delete_sync(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._prune_empty_dirs(path.parent)

    def _delete_prefix_sync(self, prefix: str) -> int:
        # Walk only the deepest directory the prefix fully names.
        base = self.root / prefix.rpartition("/")[0]
        deleted = 0
        visited: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(base):
            directory = Path(dirpath)
            visited.append(directory)
            if directory == self.root:
                dirnames[:] = [name for name in dirnames if name != TMP_DIR]
            for name in filenames:
                path = directory / name
                if path.relative_to(self.root).as_posix().startswith(prefix):
                    path.unlink(missing_ok=True)
                    deleted += 1
        for directory in reversed(visited):
            self._prune_empty_dirs(directory)
        return deleted

    def _prune_empty_dirs(self, directory: Path) -> None:
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def _check_sync(self) -> None:
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=self._tmp_dir) as probe:
            probe.write(b"ok")


def _file_size(path: Path) -> int | None:
    try:
        stat = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return stat.st_size if path.is_file() else None


def _read_range(path: Path, start: int, length: int) -> bytes:
    with path.open("rb") as file:
        file.seek(start)
        return file.read(length)


async def _read_file(file: BinaryIO, chunk_size: int) -> AsyncGenerator[bytes, None]:
    try:
        while chunk := await _io(file.read, chunk_size):
            yield chunk
    finally:
        file.close()


class _TempFile:
    """A file in the tmp dir that becomes the object by an atomic rename, or vanishes."""

    def __init__(self, file: BinaryIO, path: Path) -> None:
        self._file = file
        self._path = path
        self._pending: asyncio.Future[None] | None = None

    @classmethod
    async def create(cls, directory: Path) -> _TempFile:
        def open_temp() -> _TempFile:
            directory.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=directory, suffix=".part")
            return cls(os.fdopen(fd, "wb"), Path(name))

        return await _io(open_temp)

    async def write(self, data: memoryview, done: Callable[[], Awaitable[None]]) -> None:
        """Write ``data`` next, in the background once the previous write is done (raising
        its error); ``done()`` runs when ``data`` is written or has failed."""
        await self._written()
        self._pending = asyncio.ensure_future(self._write(data, done))

    async def _write(self, data: memoryview, done: Callable[[], Awaitable[None]]) -> None:
        try:
            await _io(self._file.write, data)
        finally:
            await done()

    async def _written(self) -> None:
        if self._pending is not None:
            # Shielded: if we are cancelled, discard() still waits for the thread.
            await asyncio.shield(self._pending)

    async def commit(self, target: Path) -> None:
        await self._written()
        await _io(self._commit_sync, target)

    def _commit_sync(self, target: Path) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        target.parent.mkdir(parents=True, exist_ok=True)
        self._path.replace(target)

    async def discard(self) -> None:
        pending = self._pending
        if pending is not None:
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()  # consumed here; the caller's error is the one that matters
        await _io(self._discard_sync)

    def _discard_sync(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)
