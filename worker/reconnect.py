"""Retrying until a dependency answers: capped exponential backoff with full jitter
(tenacity), cut short when the process is asked to stop.

The cap is short on purpose: after an outage ends the worker is back within about a
second on average, and one probe per second per worker is nothing for Redis or
PostgreSQL. The jitter spreads the replicas' retries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from tenacity import AsyncRetrying, retry_if_exception, wait_random_exponential

FIRST_SECONDS = 0.1
MAX_SECONDS = 2.0


class Stopping(Exception):
    """The process was asked to stop while waiting for a dependency."""


def patiently(stop: asyncio.Event, outage: Callable[[BaseException], bool]) -> AsyncRetrying:
    """Retry for as long as the attempt raises what ``outage`` accepts (anything else
    propagates at once), sleeping up to 0.1, 0.2, 0.4 … 2 s (uniformly drawn below
    that); raises :class:`Stopping` as soon as ``stop`` is set.

    Use as ``async for attempt in patiently(stop, redis_unreachable): with attempt: ...``.
    """

    async def sleep(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        if stop.is_set():
            raise Stopping

    return AsyncRetrying(
        sleep=sleep,
        wait=wait_random_exponential(multiplier=FIRST_SECONDS, max=MAX_SECONDS),
        retry=retry_if_exception(outage),
        reraise=True,
    )
