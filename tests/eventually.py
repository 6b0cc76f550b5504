"""Waiting in async tests: poll recorded state until it holds, with a deadline.

Tests never sleep a fixed time to prove that something did not happen; they wait here for
the state that shows it is over (a recorded attempt, a settled delivery, an empty queue)
and then assert. The synchronous ``tests.services.wait_until`` serves process start-up.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")

INTERVAL = 0.02


async def eventually(
    probe: Callable[[], Awaitable[T] | T],
    timeout: float = 10.0,
    *,
    until: Callable[[T], Any] = bool,
    what: str = "condition",
    interval: float = INTERVAL,
) -> T:
    """Call ``probe`` (plain or async) until ``until(value)`` is truthy; return that value.

    ``timeout`` is in seconds. Raises AssertionError naming ``what`` and the last value
    seen when the deadline passes first.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        value = cast(T, await result if inspect.isawaitable(result) else result)
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not reached within {timeout}s; last seen {value!r}")
        await asyncio.sleep(interval)
