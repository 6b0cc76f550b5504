"""POST the task object to a task's notify_hook once it finishes."""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import structlog

from simulator.state import SimTask, TaskStore
from simulator.timeline import Clock
from simulator.views import task_object

log = structlog.get_logger("simulator.notify")


@dataclass(slots=True)
class Notifier:
    """Checks every ``interval`` seconds for finished tasks and delivers their callbacks.

    ``failure_rate`` of the callbacks are dropped on purpose, because a real gateway's
    callbacks are best-effort; each delivery runs in its own task so a slow hook never
    delays the others.
    """

    store: TaskStore
    client: httpx.AsyncClient
    clock: Clock
    rng: random.Random
    delay: float = 0.0
    failure_rate: float = 0.0
    interval: float = 0.05
    _deliveries: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        loop = asyncio.create_task(self._loop(), name="simulator-notifier")
        try:
            yield
        finally:
            loop.cancel()
            for delivery in list(self._deliveries):
                delivery.cancel()
            await asyncio.gather(loop, *self._deliveries, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(self.interval)

    def tick(self) -> None:
        """Start the delivery of every callback that became due."""
        for task in self.store.pop_due_notifications(self.clock()):
            if self.rng.random() < self.failure_rate:
                self.store.notifications["skipped"] += 1
                log.info("notify_skipped", task_id=task.task_id)
                continue
            delivery = asyncio.create_task(self._deliver(task))
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)

    async def _deliver(self, task: SimTask) -> None:
        await asyncio.sleep(self.delay)
        body = task_object(task, task.snapshot(task.finishes_at), task.base_url)
        try:
            # Only the status counts: the hook's answer body is never read (a hook may
            # answer anything, for ever).
            async with self.client.stream("POST", task.notify_hook, json=body) as response:
                status = response.status_code
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            self.store.notifications["failed"] += 1
            log.warning("notify_failed", task_id=task.task_id, error=repr(exc))
            return
        self.store.notifications["sent"] += 1
        log.info("notify_sent", task_id=task.task_id, status=status)
