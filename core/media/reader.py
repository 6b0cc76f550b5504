"""A seekable, read-only file over a stored object, fetched in ranges as PyAV asks for them.

PyAV reads through a Python file object from the thread that decodes; the object lives
in async storage. RangeReader is that file, with a read-ahead window that doubles while
reads run sequentially (a demuxer streaming packets) and shrinks back on a seek (the
demuxer jumping to ``moov`` at the end, or to a keyframe). ``read_object`` runs the
decoding work in a thread and bridges each fetch back to the event loop.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from core.media.memory import release_freed_memory
from core.storage import ObjectNotFound, Storage, TransientStorageError

T = TypeVar("T")

Fetch = Callable[[int, int], bytes]
"""``fetch(start, length)``: bytes ``[start, start + length)``, fewer only at the end."""

MIN_WINDOW = 64 * 1024
# A 200 MiB read is then ~200 GETs; larger windows save requests but add their
# transient copies (the window and the HTTP body) to a peak that the decoder
# already fills (~26 MiB at 1080p).
MAX_WINDOW = 1024 * 1024
# One ranged GET of MAX_WINDOW takes well under this; a stuck one must not pin a thread.
FETCH_TIMEOUT = 120.0


class ReadCancelled(Exception):
    """The coroutine waiting for this reader was cancelled: stop decoding."""


class RangeReader:
    """A file object (``read``/``seek``/``tell``) over ``fetch``, for ``av.open``.

    Holds one window of at most ``max(max_window, largest read)`` bytes. The first
    exception a fetch raises is kept in ``failure``, because FFmpeg may report it as
    bad data (or swallow it) on its way back to Python.
    """

    def __init__(
        self,
        size: int,
        fetch: Fetch,
        *,
        min_window: int = MIN_WINDOW,
        max_window: int = MAX_WINDOW,
    ) -> None:
        self.size = size
        self.bytes_read = 0
        self.requests = 0
        self.failure: BaseException | None = None
        self._fetch = fetch
        self._min_window = min_window
        self._max_window = max_window
        self._window = min_window
        self._position = 0
        self._buffer = b""
        self._buffer_start = 0
        self._cancelled = threading.Event()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self.size + offset
        else:
            raise ValueError(f"unsupported whence {whence}")
        if position < 0:
            raise ValueError(f"seek to negative position {position}")
        self._position = position
        return position

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes from the current position; b"" at the end."""
        if size < 0:
            size = self.size - self._position
        if size == 0 or self._position >= self.size:
            return b""
        offset = self._position - self._buffer_start
        if not 0 <= offset < len(self._buffer):
            self._refill(size)
            offset = 0
        data = self._buffer[offset : offset + size]
        self._position += len(data)
        return data

    def read_at(self, position: int, size: int) -> bytes:
        """Exactly ``size`` bytes at ``position``, or fewer only at the end of the object."""
        self.seek(position)
        parts: list[bytes] = []
        while size > 0 and (part := self.read(size)):
            parts.append(part)
            size -= len(part)
        return b"".join(parts)

    def cancel(self) -> None:
        """Make the next read raise ReadCancelled (safe from any thread)."""
        self._cancelled.set()

    def raise_failure(self) -> None:
        """Re-raise what a fetch raised, if one did."""
        if self.failure is not None:
            raise self.failure

    def close(self) -> None:
        self._buffer = b""

    def _refill(self, size: int) -> None:
        if self._cancelled.is_set():
            raise ReadCancelled
        sequential = bool(self._buffer) and self._position == self._buffer_start + len(self._buffer)
        self._window = min(self._window * 2, self._max_window) if sequential else self._min_window
        length = min(max(size, self._window), self.size - self._position)
        self._buffer = b""  # drop the old window before the new one arrives
        try:
            data = self._fetch(self._position, length)
        except BaseException as exc:
            self.failure = self.failure or exc
            raise
        self.requests += 1
        self.bytes_read += len(data)
        self._buffer, self._buffer_start = data, self._position


async def read_object(storage: Storage, key: str, work: Callable[[RangeReader], T]) -> T:
    """Run ``work(reader)`` in a thread, the reader fetching ``key`` through ``storage``.

    The thread is the call's own: on the loop's default executor, enough concurrent
    calls would take every thread while waiting for fetches that need one (local disk
    reads run there). Raises ObjectNotFound if there is no object. Cancelling stops the
    thread at its next read; the event loop keeps serving its fetches meanwhile. Freed
    heap memory goes back to the OS before and after, so this peak does not add to an
    earlier one.
    """
    size = await storage.stat(key)
    if size is None:
        raise ObjectNotFound(key)
    loop = asyncio.get_running_loop()
    reader = RangeReader(size, _fetch_through(storage, key, loop))
    thread = ThreadPoolExecutor(1, thread_name_prefix="media")
    try:
        return await loop.run_in_executor(thread, _trimmed, work, reader)
    except asyncio.CancelledError:
        reader.cancel()
        raise
    finally:
        thread.shutdown(wait=False)


def _trimmed(work: Callable[[RangeReader], T], reader: RangeReader) -> T:
    release_freed_memory()
    try:
        return work(reader)
    finally:
        release_freed_memory()


def _fetch_through(storage: Storage, key: str, loop: asyncio.AbstractEventLoop) -> Fetch:
    def fetch(start: int, length: int) -> bytes:
        future = asyncio.run_coroutine_threadsafe(storage.read_range(key, start, length), loop)
        try:
            return future.result(FETCH_TIMEOUT)
        except TimeoutError as exc:
            future.cancel()
            raise TransientStorageError(f"reading {key!r} timed out") from exc

    return fetch
