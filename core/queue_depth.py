"""How deep the ARQ queue is: what the worker's queue gauges export and the operator
console shows.

ARQ's sorted set ``arq:queue`` scores each job with the time (Unix milliseconds) it is
due. Jobs due now are the backlog a worker could start (``ZCOUNT -inf now``); the rest are
deferred polls and retries of videos in flight, which ``ZCARD`` would count too (and so
scale on the number of running videos).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from arq.connections import ArqRedis
from arq.constants import default_queue_name


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """``due`` jobs (due now), ``deferred`` ones (due later) and how long the oldest due
    job has been due, in seconds (0 when none is)."""

    due: int
    deferred: int
    oldest_due_age_seconds: float


async def queue_depth(redis: ArqRedis, queue: str = default_queue_name) -> QueueDepth:
    """Three reads of the queue's sorted set, not one atomic view (a gauge, not an
    account); a Redis error propagates."""
    now_ms = int(time.time() * 1000)
    due = await redis.zcount(queue, "-inf", now_ms)
    deferred = await redis.zcount(queue, f"({now_ms}", "+inf")
    lowest = await redis.zrange(queue, 0, 0, withscores=True)
    oldest = float(lowest[0][1]) if lowest else None
    due_for = 0.0 if oldest is None else (now_ms - oldest) / 1000
    return QueueDepth(int(due), int(deferred), max(0.0, due_for))
