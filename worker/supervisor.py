"""The worker process: it rides out Redis and database outages instead of exiting.

arq's ``Worker.run`` ends the process on the first Redis error, and a Kubernetes pod
that exits waits out CrashLoopBackOff delays on top of the outage. Here:

- **Start-up** connects to the database with backoff (``on_startup`` seeds the runtime
  config); Redis is connected on first use.
- **Redis outage.** An ``ArqWorker`` runs the ARQ loop for as long as Redis answers.
  When a Redis error ends it (a lost connection, or a Redis refusing writes), readiness
  turns 503, the running jobs carry on (their database work does not need Redis; their
  arq bookkeeping waits for it), Redis is pinged with backoff (at most 2 s apart) and a
  new ``ArqWorker`` takes over on the same connection pool. Its reconcile cron runs at
  once, and the submits of tasks still queued are enqueued without waiting for them to
  become overdue (the API could not enqueue the creates it committed during the outage).
- **Database outage.** A watch pings the database (every 2 s; at once when a job met a
  database error, and every 0.5 s while it is down). While it is down readiness is 503
  and no job is picked; a job that meets the outage is deferred with ``arq.Retry``
  (``worker/jobs/outage.py``).
- **SIGTERM/SIGINT**, outage or not: no new job; the running ones get
  ``WORKER_DRAIN_SECONDS``, then are cancelled (arq re-queues them); then exit 0.

Each change of a dependency's state is logged once (``WorkerHealth``), never a line per
retry. Anything that is not an outage (a bug) still ends the process with its traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

import structlog
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool

from core.outages import database_unreachable, redis_failed
from core.queue_codec import ARQ_CODEC
from core.redis_writes import bound_writes_in_context
from core.repo.health import ping
from schemas.settings import Settings
from worker.arq_worker import ArqWorker
from worker.context import wctx
from worker.health import Dependency, HealthServer, Phase, WorkerHealth
from worker.jobs.reconcile import catch_up
from worker.lifecycle import on_shutdown, on_startup
from worker.options import worker_options
from worker.reconnect import Stopping, patiently

log = structlog.get_logger(__name__)

REDIS_CONNECT_SECONDS = 2.0
# No arq command blocks: a command this slow means a Redis that stopped answering
# without closing its connections.
REDIS_COMMAND_SECONDS = 10.0
# One start-up attempt (connect, seed the config): a SIGTERM waits at most this long.
STARTUP_ATTEMPT_SECONDS = 10.0
DATABASE_CHECK_SECONDS = 3.0
DATABASE_CHECK_INTERVAL = 2.0
DATABASE_RECHECK_INTERVAL = 0.5  # while it is down: jobs resume soon after it is back
# An ARQ loop that ends within this many seconds of its start is failing quickly.
QUICK_FAILURE_SECONDS = 10.0
RESTART_MAX_SECONDS = 30.0
# After the drain, how long cancelled jobs get to hand their job back to arq.
CANCEL_GRACE_SECONDS = 5.0
# How often a task that outlived its cancellation is cancelled again.
RECANCEL_SECONDS = 0.1


async def cancel_until_done(task: asyncio.Task[Any], every: float = RECANCEL_SECONDS) -> None:
    """Cancel ``task`` and wait for it to end, cancelling it again every ``every`` seconds
    while it runs on; whatever it ends with is swallowed.

    One ``cancel()`` is not enough for the ARQ loop: on Python 3.11 ``asyncio.wait_for``
    drops a cancellation that arrives just after its inner future finished (CPython
    gh-86296, fixed in 3.12); ARQ runs each job in ``wait_for`` (the pool's own writes no
    longer are: ``core.redis_writes``). A loop that lost its cancellation would poll on
    forever, and the process would wait for it until SIGKILL.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=every)
    if not task.cancelled():
        task.exception()  # retrieved: the loop is over whatever it ended with


def open_redis(settings: Settings) -> ArqRedis:
    """The one Redis pool of the process (jobs enqueue through it too); it connects on
    first use and reconnects by itself after an outage."""
    pool = ConnectionPool.from_url(
        settings.redis_url,
        socket_connect_timeout=REDIS_CONNECT_SECONDS,
        socket_timeout=REDIS_COMMAND_SECONDS,
    )
    bound_writes_in_context(pool)
    # The jobs' own enqueues (poll, store, deliver) go through this pool: JSON, like the API's.
    return ArqRedis(pool, **ARQ_CODEC)


class Supervisor:
    """Runs ARQ workers one after another, across outages, until a signal."""

    def __init__(
        self, settings: Settings, health: WorkerHealth, server: HealthServer | None = None
    ) -> None:
        self.settings = settings
        self.health = health
        self.server = server
        self.stop = asyncio.Event()
        self.redis = open_redis(settings)
        self.ctx: dict[str, Any] = {"settings": settings, "redis": self.redis, "health": health}
        self.worker: ArqWorker | None = None
        # Jobs still running from an ARQ loop that an outage ended.
        self.leftovers: set[asyncio.Task[Any]] = set()

    async def run(self) -> None:
        """Until SIGTERM/SIGINT; raises only for what is not an outage."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        if self.server is not None:
            self.server.start()
            log.info("worker_health_server", port=self.server.port)
        watch: asyncio.Task[None] | None = None
        try:
            if await self._start():
                watch = asyncio.create_task(self._watch_database())
                self.health.phase = Phase.RUNNING
                await self._serve()
        finally:
            self.health.phase = Phase.STOPPING
            await self._drain()
            if watch is not None:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
            await self._close()

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self.stop.is_set():
            log.info("worker_stopping", signal=sig.name, drain_seconds=self._drain_seconds)
        self.stop.set()

    @property
    def _drain_seconds(self) -> float:
        return self.settings.worker_drain_seconds

    async def _start(self) -> bool:
        """``on_startup`` (the database), retried while the database is unreachable;
        False if stopped meanwhile."""
        try:
            async for attempt in patiently(self.stop, database_unreachable):
                with attempt:
                    try:
                        await asyncio.wait_for(on_startup(self.ctx), STARTUP_ATTEMPT_SECONDS)
                    except Exception as exc:
                        if database_unreachable(exc):
                            self.health.down(Dependency.DATABASE, exc)
                        raise
        except Stopping:
            return False
        self.health.up(Dependency.DATABASE)
        return True

    async def _serve(self) -> None:
        """ARQ loops, one per stretch of Redis uptime, until a signal.

        Any Redis error ends a loop, not only a lost connection: a Redis out of memory
        or unable to persist answers PING but refuses writes, so a loop that fails
        again soon after its start waits longer (up to ``RESTART_MAX_SECONDS``) first.
        """
        quick_failures = 0
        while not self.stop.is_set():
            worker = self._new_worker()
            started = time.monotonic()
            main = asyncio.create_task(worker.main())
            worker.main_task = main
            stopped = asyncio.create_task(self.stop.wait())
            await asyncio.wait({main, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not main.done():
                return  # a signal: the drain stops this loop
            error = main.exception()
            if error is None or not redis_failed(error):
                raise error or RuntimeError("the ARQ loop ended by itself")
            self._lost_redis(worker, error)
            quick = time.monotonic() - started < QUICK_FAILURE_SECONDS
            quick_failures = quick_failures + 1 if quick else 0
            if quick_failures > 1:
                pause = min(RESTART_MAX_SECONDS, 2.0 ** (quick_failures - 1))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), pause)
            if self.stop.is_set() or not await self._redis_back():
                return
            self._track(asyncio.create_task(self._catch_up()))

    def _new_worker(self) -> ArqWorker:
        options = {
            **worker_options(self.settings),  # fresh crons: the reconcile runs at start
            "redis_pool": self.redis,
            "ctx": self.ctx,
            "on_startup": None,
            "on_shutdown": None,
            "handle_signals": False,
        }
        self.worker = ArqWorker(health=self.health, stop=self.stop, **options)
        return self.worker

    def _lost_redis(self, worker: ArqWorker, error: BaseException) -> None:
        self.health.down(Dependency.REDIS, error)
        for job_id, task in worker.tasks.items():
            if not task.done():
                self._track(task, job_id)
            elif not task.cancelled():
                task.exception()  # seen: it is the error that ended the loop, or like it
        worker.tasks.clear()

    def _track(self, task: asyncio.Task[Any], job_id: str | None = None) -> None:
        """Keep ``task`` (a job of an ended ARQ loop, or a catch-up) until it is done;
        the drain waits for it too."""

        def done(task: asyncio.Task[Any]) -> None:
            self.leftovers.discard(task)
            if not task.cancelled() and task.exception() is not None:
                error = task.exception()
                log.warning("job_interrupted", job_id=job_id, error=type(error).__name__)

        self.leftovers.add(task)
        task.add_done_callback(done)

    async def _redis_back(self) -> bool:
        """Ping Redis with backoff until it answers; False if stopped meanwhile."""
        # Every pooled connection broke with the server: start afresh, not one error each.
        await self.redis.connection_pool.disconnect()
        try:
            async for attempt in patiently(self.stop, redis_failed):
                with attempt:
                    await self.redis.ping()
        except Stopping:
            return False
        return True

    async def _catch_up(self) -> None:
        try:
            count = await catch_up(wctx(self.ctx))
        except Exception as exc:
            if not (database_unreachable(exc) or redis_failed(exc)):
                raise
            self.health.database_suspect.set()
            return  # the reconcile cron does it once the task is overdue
        if count:
            log.info("queued_tasks_enqueued_after_outage", tasks=count)

    async def _watch_database(self) -> None:
        engine = wctx(self.ctx).engine

        async def check() -> None:
            async with engine.connect() as conn:
                await ping(conn)

        while True:
            try:
                await asyncio.wait_for(check(), DATABASE_CHECK_SECONDS)
            except Exception as exc:  # noqa: BLE001  (a probe: whatever fails, it is down)
                self.health.down(Dependency.DATABASE, exc)
            else:
                self.health.up(Dependency.DATABASE)
            self.health.database_suspect.clear()
            up = self.health.is_up(Dependency.DATABASE)
            interval = DATABASE_CHECK_INTERVAL if up else DATABASE_RECHECK_INTERVAL
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.health.database_suspect.wait(), interval)

    async def _drain(self) -> None:
        """Stop taking jobs, give the running ones the drain time, cancel the rest (arq
        puts a cancelled job back in the queue), then stop the ARQ loop."""
        worker = self.worker
        if worker is not None:
            worker.draining = True
        running = self._running()
        if running:
            log.info("worker_draining", jobs=len(running))
            await asyncio.wait(running, timeout=self._drain_seconds)
        left = self._running()
        for task in left:
            task.cancel()
        if left:
            log.warning("jobs_cancelled_at_stop", jobs=len(left))
            await asyncio.wait(left, timeout=CANCEL_GRACE_SECONDS)
        if worker is not None and worker.main_task is not None:
            await cancel_until_done(worker.main_task)

    def _running(self) -> set[asyncio.Task[Any]]:
        tasks = set(self.leftovers)
        if self.worker is not None:
            tasks.update(self.worker.tasks.values())
        return {task for task in tasks if not task.done()}

    async def _close(self) -> None:
        if self.worker is not None and self.health.is_up(Dependency.REDIS):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.redis.delete(self.worker.health_check_key), 1.0)
        await on_shutdown(self.ctx)
        await self.redis.aclose(close_connection_pool=True)
        if self.server is not None:
            await self.server.stop()
        log.info("worker_stopped")
