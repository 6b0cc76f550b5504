"""A job that meets a database outage is deferred, not failed.

Every job re-reads the task before acting (idempotent by its state transitions), so
running it again after the outage is safe. Deferring (``arq.Retry`` with backoff) keeps
the job in the queue; failing it would drop it and leave the task to the reconciler,
a grace period later. The supervisor stops picking jobs while the database is away
(``worker/supervisor.py``), so a short outage costs a job at most one of its tries.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry
from arq.typing import WorkerCoroutine

from core.outages import database_unreachable
from worker.health import WorkerHealth
from worker.jobs.pacing import pacing
from worker.schedule import backoff

Job = Callable[..., Awaitable[Any]]

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
