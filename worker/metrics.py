"""The worker's ``/metrics``: its own counters (``core/metrics.py``) and the queue gauges
(read by ``core/queue_depth.py``, which the operator console reads too)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from arq.connections import ArqRedis
from arq.constants import default_queue_name
from prometheus_client.core import GaugeMetricFamily, Metric

from core.metrics import PREFIX
from core.queue_depth import queue_depth

# Every worker is scraped: at most one round of Redis reads per this many seconds each.
QUEUE_CACHE_SECONDS = 2.0


class QueueGauges:
    """``google_video_queue_jobs_due``, ``google_video_queue_jobs_deferred`` and
    ``google_video_queue_oldest_due_job_age_seconds``; call :meth:`refresh` before
    collecting (a Redis error propagates: the scrape fails)."""

    def __init__(self, redis: ArqRedis, queue: str = default_queue_name) -> None:
        self._redis = redis
        self._queue = queue
        self._due = 0
        self._deferred = 0
        self._oldest_age = 0.0
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._read_at is not None and now - self._read_at < QUEUE_CACHE_SECONDS:
                return
            depth = await queue_depth(self._redis, self._queue)
            self._due, self._deferred = depth.due, depth.deferred
            self._oldest_age = depth.oldest_due_age_seconds
            self._read_at = now

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            f"{PREFIX}_queue_jobs_due",
            "Jobs in arq:queue due now (score <= now): the backlog waiting for a worker.",
            value=self._due,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_queue_jobs_deferred",
            "Jobs in arq:queue due later (deferred polls, retries).",
            value=self._deferred,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_queue_oldest_due_job_age_seconds",
            "How long the oldest job due now has been due (0 when none is due).",
            value=self._oldest_age,
        )
