"""A byte stream regrouped into fixed-size blocks in a bounded set of reusable buffers,
counted and hashed (SHA-256) off the event loop.

Each byte is copied once, from the chunk that brought it into its block's buffer; the
backends write or upload the buffer itself. At most ``count`` buffers exist: when all are
taken, ``split`` waits for one to be released before reading on, so a store holds at most
``count x size`` bytes however fast its source is and however slow its destination.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import cast


@dataclass(eq=False)
class Block:
    """Bytes ``[offset, offset + len(view))`` of the stream; ``last`` is the stream's end
    (the last block may be shorter than the others, and is empty only for an empty stream).

    Valid until ``Blocks.release(block)``: the buffer is then refilled.
    """

    offset: int
    view: memoryview
    last: bool
    buffer: bytearray = field(repr=False)
    hashed: asyncio.Future[None] = field(repr=False)

    def body(self) -> bytes:
        """The block as a body for boto3 (which refuses memoryviews): the buffer itself when
        the block fills it, else a copy of the filled head (a short last block)."""
        if len(self.view) == len(self.buffer):
            # botocore takes bytearray bodies (its validator allows them); its stubs say bytes.
            return cast(bytes, self.buffer)
        return bytes(self.view)


class Blocks:
    """Split one stream into blocks of ``size`` bytes using at most ``count`` buffers.

    ``size`` and ``sha256()`` describe what has been split so far. The first buffer grows
    with the stream (a small object never costs a whole block); later ones are allocated
    whole, once, and reused.
    """

    def __init__(self, size: int, count: int) -> None:
        if size < 1 or count < 1:
            raise ValueError("block size and count must be positive")
        self.block_size = size
        self.size = 0
        self._count = count
        self._allocated = 0
        self._free: asyncio.Queue[bytearray] = asyncio.Queue()
        self._sha256 = hashlib.sha256()
        self._hashing: asyncio.Future[None] | None = None

    async def split(self, chunks: AsyncIterator[bytes]) -> AsyncGenerator[Block, None]:
        """Yield the stream's blocks in order, the final one with ``last`` set; an empty
        stream yields one empty last block. Release every block yielded."""
        buffer = await self._take()
        filled = 0
        async for chunk in chunks:
            view = memoryview(chunk)
            while view:
                if filled == self.block_size:
                    yield self._handout(buffer, filled, last=False)
                    buffer, filled = await self._take(), 0
                piece = view[: self.block_size - filled]
                buffer[filled : filled + len(piece)] = piece
                filled += len(piece)
                view = view[len(piece) :]
        yield self._handout(buffer, filled, last=True)

    async def release(self, block: Block) -> None:
        """Give ``block``'s buffer back for reuse, once its hashing is done."""
        await asyncio.shield(block.hashed)
        block.view.release()
        self._free.put_nowait(block.buffer)

    async def sha256(self) -> str:
        """The hex SHA-256 of every byte split so far (waits for the hashing in flight)."""
        if self._hashing is not None:
            await asyncio.shield(self._hashing)
        return self._sha256.hexdigest()

    async def settle(self) -> None:
        """Wait for the hashing threads, which may still read buffers (on failure paths)."""
        if self._hashing is not None:
            await asyncio.wait([self._hashing])

    async def _take(self) -> bytearray:
        if self._allocated == 0:
            self._allocated = 1
            return bytearray()
        if self._free.empty() and self._allocated < self._count:
            self._allocated += 1
            return bytearray(self.block_size)
        return await self._free.get()

    def _handout(self, buffer: bytearray, filled: int, *, last: bool) -> Block:
        view = memoryview(buffer)[:filled]
        offset, self.size = self.size, self.size + filled
        self._hashing = asyncio.ensure_future(self._hash_after(self._hashing, view))
        return Block(offset, view, last, buffer, self._hashing)

    async def _hash_after(self, previous: asyncio.Future[None] | None, view: memoryview) -> None:
        if previous is not None:
            await previous
        # hashlib releases the GIL on large buffers, so the loop runs on meanwhile.
        await asyncio.to_thread(self._sha256.update, view)
