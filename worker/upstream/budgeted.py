"""A leased client that asks the global upstream budget (`worker.budget`) before each
call to the provider, and tells it about the provider's rate-limit answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from worker.budget import Call, UpstreamBudget
from worker.upstream.base import DownloadStream, PollResult, SubmitRequest, SubmitResult, Upstream
from worker.upstream.errors import UpstreamError


class Budgeted:
    """`inner` (a client of provider `kind`) behind `budget`, for one `call`'s priority.

    `submit`, `poll` and `download` each take a token first (a poll hop may raise
    `worker.budget.Deferred` instead); `check` and `aclose` take none.
    """

    def __init__(self, inner: Upstream, budget: UpstreamBudget, kind: str, call: Call) -> None:
        self._inner = inner
        self._budget = budget
        self._kind = kind
        self._call = call

    async def submit(self, req: SubmitRequest) -> SubmitResult:
        await self._budget.admit(self._kind, self._call)
        try:
            return await self._inner.submit(req)
        except UpstreamError as error:
            await self._budget.note(self._kind, error)
            raise

    async def poll(self, task_id: str) -> PollResult:
        await self._budget.admit(self._kind, self._call)
        try:
            return await self._inner.poll(task_id)
        except UpstreamError as error:
            await self._budget.note(self._kind, error)
            raise

    @asynccontextmanager
    async def download(self, url: str) -> AsyncIterator[DownloadStream]:
        await self._budget.admit(self._kind, self._call)
        try:
            async with self._inner.download(url) as stream:
                yield stream
        except UpstreamError as error:
            await self._budget.note(self._kind, error)
            raise

    async def check(self) -> None:
        await self._inner.check()

    async def aclose(self) -> None:
        await self._inner.aclose()
