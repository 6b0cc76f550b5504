"""A job that meets a database outage is deferred, not failed.

Every job re-reads the task before acting (idempotent by its state transitions), so
running it again after the outage is safe. Deferring (``arq.Retry`` with backoff) keeps
the job in the queue; failing it would drop it and leave the task to the reconciler,
a grace period later. The supervisor stops picking jobs while the database is away
(``worker/supervisor.py``), so a short outage costs a job at most one of its tries.

The one write a rerun cannot redo, the outcome of an accepted submit, is retried in
place instead (``recorded``).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from arq import Retry
from arq.typing import WorkerCoroutine
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_random_exponential

from core.outages import database_unreachable
from worker.health import WorkerHealth
from worker.jobs.pacing import pacing
from worker.reconnect import FIRST_SECONDS, MAX_SECONDS
from worker.schedule import backoff

Job = Callable[..., Awaitable[Any]]
T = TypeVar("T")

SKIPPED = "skipped: database unavailable"


def _suspect(ctx: dict[str, Any]) -> None:
    health = ctx.get("health")
    if isinstance(health, WorkerHealth):
        health.database_suspect.set()


def deferred_on_outage(job: Job) -> WorkerCoroutine:
    """``job`` that raises ``arq.Retry`` (deferred by the transient-error backoff of its
    try number) when the database cannot be reached."""

    @functools.wraps(job)
    async def run(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await job(ctx, *args, **kwargs)
        except Exception as exc:
            if not database_unreachable(exc) or "app" not in ctx:
                raise
            _suspect(ctx)
            delay = backoff(pacing(ctx["app"]), int(ctx.get("job_try", 1)))
            raise Retry(defer=delay) from exc

    return run


def skipped_on_outage(cron: Job) -> WorkerCoroutine:
    """``cron`` that ends quietly when the database cannot be reached: its next run
    comes within seconds, and the supervisor logs the outage once."""

    @functools.wraps(cron)
    async def run(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await cron(ctx, *args, **kwargs)
        except Exception as exc:
            if not database_unreachable(exc):
                raise
            _suspect(ctx)
            return SKIPPED

    return run


async def recorded(write: Callable[[], Awaitable[T]], within: float) -> T:
    """``write()``, retried with backoff while the database is unreachable, for at most
    ``within`` seconds (then its error propagates); any other error propagates at once.

    For a write that cannot be redone by running the job again: the outcome of a submit
    the upstream accepted (a task left ``submitting`` can only end ambiguous).
    """
    retrying = AsyncRetrying(
        wait=wait_random_exponential(multiplier=FIRST_SECONDS, max=MAX_SECONDS),
        retry=retry_if_exception(database_unreachable),
        stop=stop_after_delay(within),
        reraise=True,
    )
    return await retrying(write)
