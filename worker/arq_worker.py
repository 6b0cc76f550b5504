"""arq's ``Worker`` as the supervisor runs it, one instance per stretch of Redis uptime.

Every poll hop is a job, so a job costs fewer Redis round trips here: it is claimed in
one (``core.queue_script.claim_job``, arq makes four) and, finished without a kept
result, cleared in one script (``clear_finished_job``) instead of a MULTI/EXEC. Three
changes, each for an outage (``worker/supervisor.py`` has the whole story):

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
from core.queue_script import claim_job, clear_finished_job
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

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Start each job in a task if this worker has a slot and claims it: arq 0.28's
        ``start_jobs`` with its WATCH/EXISTS/ZSCORE/MULTI transaction as one script. A
        slot taken for a claim that fails (Redis down) is given back."""
        in_progress_ms = int(self.in_progress_timeout_s * 1000)
        for raw_id in job_ids:
            await self.sem.acquire()
            if self.job_counter >= self.max_jobs:
                self.sem.release()
                return
            self.job_counter += 1
            job_id = raw_id.decode()
            try:
                score = await claim_job(self.pool, job_id, self.queue_name, in_progress_ms)
            except BaseException:
                self._release_sem_dec_counter_on_complete()
                raise
            if score is None:  # running elsewhere, finished, or deferred again
                self._release_sem_dec_counter_on_complete()
                continue
            task = self.loop.create_task(self.run_job(job_id, score))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

    async def run_cron(self, n: datetime, delay: float, num_windows: int = 2) -> None:
        if self.health.is_up(Dependency.DATABASE):
            await super().run_cron(n, delay, num_windows)
            return
        # Skip the runs that fall due now, as arq would have enqueued them.
        cutoff = n + timedelta(seconds=delay * num_windows)
        for cron in self.cron_jobs:
            while cron.next_run is not None and cron.next_run < cutoff:
                cron.calculate_next(cron.next_run)

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        if finish and not result_data and keep_in_progress is None:
            await self._record(job_id, clear_finished_job, self.pool, job_id, self.queue_name)
            return
        args = (result_data, result_timeout_s, keep_result_forever, incr_score, keep_in_progress)
        await self._record(job_id, super().finish_job, job_id, finish, *args)

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
