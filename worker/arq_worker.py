"""arq's ``Worker`` as the supervisor runs it, one instance per stretch of Redis uptime.

Three changes, each for an outage (``worker/supervisor.py`` has the whole story):

- every completed poll of the queue is reported to ``WorkerHealth`` (readiness);
- while the database is down no job is picked and no cron is enqueued (their schedule
  moves on): jobs stay queued instead of spending their tries on a dead database;
- a job that ends while Redis is down keeps its result until Redis answers again, then
  records it (``finish_job``): arq would raise, leaving the job marked in progress for
  an hour and its finished work to be redone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from arq.worker import Worker

from core.outages import redis_unreachable
from worker.health import Dependency, WorkerHealth
from worker.reconnect import Stopping, patiently

log = structlog.get_logger(__name__)


class ArqWorker(Worker):
    """``arq.worker.Worker`` given ``health`` and the process's ``stop`` event; set
    ``draining`` to stop taking jobs."""

    def __init__(self, *, health: WorkerHealth, stop: asyncio.Event, **options: Any) -> None:
        super().__init__(**options)
        self.health = health
        self.stop = stop
        self.draining = False

    async def _poll_iteration(self) -> None:
        self.allow_pick_jobs = not self.draining and self.health.is_up(Dependency.DATABASE)
        await super()._poll_iteration()
        self.health.polled()

    async def run_cron(self, n: datetime, delay: float, num_windows: int = 2) -> None:
        if self.health.is_up(Dependency.DATABASE):
            await super().run_cron(n, delay, num_windows)
            return
        # Skip the runs that fall due now, as arq would have enqueued them.
        cutoff = n + timedelta(seconds=delay * num_windows)
        for cron in self.cron_jobs:
            while cron.next_run is not None and cron.next_run < cutoff:
                cron.calculate_next(cron.next_run)

    async def finish_job(self, job_id: str, *args: Any) -> None:
        await self._record(job_id, super().finish_job, job_id, *args)

    async def finish_failed_job(self, job_id: str, *args: Any) -> None:
        await self._record(job_id, super().finish_failed_job, job_id, *args)

    async def _record(self, job_id: str, write: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run arq's bookkeeping ``write`` until Redis takes it; on a stop during an
        outage, leave it (the in-progress key expires; the reconciler has the task)."""
        try:
            await write(*args)  # Redis answers: no retry loop (~40 µs a job) to set up
            return
        except Exception as exc:
            if not redis_unreachable(exc):
                raise
        try:
            async for attempt in patiently(self.stop, redis_unreachable):
                with attempt:
                    await write(*args)
        except Stopping:
            log.warning("job_result_not_recorded", job_id=job_id, reason="stopped in an outage")
