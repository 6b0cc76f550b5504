"""Rendered MP4s, made once per distinct request and kept for the most recent ones.

Rendering takes a few tenths of a second of CPU, so it runs in a worker thread and two
downloads of the same video share one render. Tasks with the same request (a benchmark's
thousand identical prompts) share one entry; ``capacity`` bounds the memory to that many
videos of a few hundred kB each.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from simulator.video import RenderSpec

DEFAULT_CAPACITY = 32


@dataclass(slots=True)
class RenderCache:
    render: Callable[[RenderSpec], bytes]
    capacity: int = DEFAULT_CAPACITY
    renders: int = 0
    _entries: OrderedDict[RenderSpec, asyncio.Future[bytes]] = field(
        default_factory=OrderedDict, init=False
    )

    async def get(self, spec: RenderSpec) -> bytes:
        """The MP4 of ``spec``; a render that raised is forgotten, so the next call retries."""
        entry = self._entries.get(spec)
        if entry is None:
            entry = asyncio.ensure_future(self._render(spec))
            self._entries[spec] = entry
            self._evict()
        else:
            self._entries.move_to_end(spec)
        try:
            return await asyncio.shield(entry)
        except Exception:
            if self._entries.get(spec) is entry:
                del self._entries[spec]
            raise

    async def _render(self, spec: RenderSpec) -> bytes:
        self.renders += 1
        return await asyncio.to_thread(self.render, spec)

    def _evict(self) -> None:
        while len(self._entries) > self.capacity:
            oldest = next(iter(self._entries))
            if not self._entries[oldest].done():
                break
            del self._entries[oldest]

    def clear(self) -> None:
        """Forget the finished renders (running ones finish for their waiters)."""
        for spec in [s for s, entry in self._entries.items() if entry.done()]:
            del self._entries[spec]
