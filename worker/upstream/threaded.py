"""An httpx async transport that runs each exchange on httpx's sync transport, in a thread
of its own, for downloads.

Reading a large body through the event loop costs ~2.3 CPU s per GiB here (a loop wakeup
and anyio's slicing per 64 KiB read); blocking reads in a thread cost ~0.9. The
`httpx.AsyncClient` above this transport is unchanged (redirects, cookies, headers,
timeouts, error types: the sync transport maps failures to the same httpx exceptions), so
only the socket work moves. The thread reads ahead at most ``depth`` batches of about
``batch`` bytes, and only while the body is being read: an answer whose body is never
read is closed without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Literal

import httpx

BATCH_BYTES = 1024 * 1024
DEPTH = 2

_Item = (
    tuple[Literal["response"], httpx.Response]
    | tuple[Literal["chunks"], list[bytes]]
    | tuple[Literal["end"], None]
    | tuple[Literal["error"], BaseException]
)


class ThreadedTransport(httpx.AsyncBaseTransport):
    """``sync``'s exchanges, each on a dedicated daemon thread (never the loop's default
    executor: a body read for minutes would hold one of its few threads)."""

    def __init__(
        self, sync: httpx.BaseTransport, *, batch: int = BATCH_BYTES, depth: int = DEPTH
    ) -> None:
        self._sync = sync
        self._batch = batch
        self._depth = depth

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.SyncByteStream):
            raise RuntimeError("ThreadedTransport sends only bodies held in memory")
        exchange = _Exchange(self._sync, request, self._batch, self._depth)
        return await exchange.start()

    async def aclose(self) -> None:
        self._sync.close()


class _Exchange(httpx.AsyncByteStream):
    """One request: sent, then its body read, on one thread; the body as an async stream."""

    def __init__(
        self, sync: httpx.BaseTransport, request: httpx.Request, batch: int, depth: int
    ) -> None:
        self._sync = sync
        self._request = request
        self._batch = batch
        self._depth = depth
        self._loop = asyncio.get_running_loop()
        self._items: asyncio.Queue[_Item] = asyncio.Queue()
        self._room = threading.Semaphore(0)  # batches the reader may read ahead
        self._stop = threading.Event()
        self._closed = asyncio.Event()
        self._started = False
        self._finished = False  # the reader has posted its last item

    async def start(self) -> httpx.Response:
        """Send the request; the answer with this object as its body stream."""
        threading.Thread(target=self._run, name="httpx-download", daemon=True).start()
        try:
            kind, value = await self._items.get()
        except BaseException:
            self._halt()
            raise
        if kind == "error":
            assert isinstance(value, BaseException)
            self._finished = True
            raise value
        assert isinstance(value, httpx.Response)
        return httpx.Response(
            value.status_code, headers=value.headers, stream=self, extensions=value.extensions
        )

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise httpx.StreamConsumed()
        self._started = True
        for _ in range(self._depth):
            self._room.release()
        while True:
            kind, value = await self._items.get()
            if kind == "chunks":
                assert isinstance(value, list)
                self._room.release()
                for chunk in value:
                    yield chunk
            elif kind == "error":
                assert isinstance(value, BaseException)
                self._finished = True
                raise value
            else:
                self._finished = True
                return

    async def aclose(self) -> None:
        """Stop reading. A body read to its end (or failure) is closed before this returns;
        one abandoned midway is closed by the thread after its current network read, not
        waited for: a caller's deadline (`asyncio.timeout`) must not wait a read timeout."""
        self._halt()
        if self._finished:
            await self._closed.wait()

    def _halt(self) -> None:
        self._stop.set()
        self._room.release()

    # --- on the thread ---------------------------------------------------------------

    def _post(self, item: _Item) -> None:
        try:
            self._loop.call_soon_threadsafe(self._items.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody reads on
            self._stop.set()

    def _run(self) -> None:
        try:
            response = self._sync.handle_request(self._request)
        except BaseException as exc:  # noqa: BLE001  (raised on the loop)
            self._post(("error", exc))
            self._post_closed()
            return
        self._post(("response", response))
        try:
            self._read(response.stream)
        finally:
            response.close()
            self._post_closed()

    def _read(self, stream: httpx.SyncByteStream | httpx.AsyncByteStream) -> None:
        assert isinstance(stream, httpx.SyncByteStream)  # a sync transport's answer
        chunks: Iterator[bytes] = iter(stream)
        while True:
            self._room.acquire()
            if self._stop.is_set():
                return
            batch: list[bytes] = []
            size = 0
            try:
                while size < self._batch:
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    batch.append(chunk)
                    size += len(chunk)
            except BaseException as exc:  # noqa: BLE001  (raised on the loop)
                self._post(("chunks", batch))
                self._post(("error", exc))
                return
            if batch:
                self._post(("chunks", batch))
            if size < self._batch:
                self._post(("end", None))
                return

    def _post_closed(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(self._closed.set)
