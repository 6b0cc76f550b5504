"""The job queue (ARQ on Redis): job names, deterministic job ids, argument order, and the
one way to enqueue after a commit.

Redis is a cache of work, not its only copy (docs/architecture.md, "Queue"): every job is
enqueued only after the transaction that made it due has committed, and the database
records when it is due (``next_attempt_at``). An enqueue that fails is logged and left to
the reconciler, which re-enqueues overdue work under a *recovery* job id.

Job ids make duplicates harmless: ARQ refuses a second job with the id of a queued one.
Arguments are JSON-serialisable values in the order the job functions take them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import structlog
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from core.queue_script import enqueue_job

SUBMIT = "submit_task"
POLL = "poll_task"
STORE = "store_task"
DELIVER = "deliver_webhook"
PURGE_VIDEO = "purge_video"
RECONCILE = "reconcile"
PURGE_IDEMPOTENCY = "purge_idempotency"
PURGE_UPLOADS = "purge_uploads"
PURGE_ACTIVITY = "purge_activity"

# The variant of a poll enqueued by the upstream's callback (one per poll position).
CALLBACK = "cb"

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    """One job to enqueue: ``function(ctx, *args)`` under ``job_id``, ``defer_by`` seconds
    from now (None: as soon as a worker is free)."""

    function: str
    args: tuple[str | int, ...]
    job_id: str
    defer_by: float | None = None


def recovery(due_at: datetime) -> str:
    """The job-id variant of a reconciler re-enqueue of work that was due at ``due_at``.

    A fresh id per claim: a killed worker's job keeps its ARQ in-progress key until that
    expires, and reusing its id would wait for it.
    """
    return f"r{int(due_at.timestamp() * 1000)}"


def _id(*parts: str | int | None) -> str:
    return ":".join(str(p) for p in parts if p is not None)


def submit(
    task_id: str, *, retry: int | None = None, variant: str | None = None, delay: float = 0
) -> Job:
    """``submit_task(task_id)``; ``retry`` numbers a resubmission after a transient error."""
    return Job(SUBMIT, (task_id,), _id("submit", task_id, retry, variant), delay or None)


def poll(task_id: str, attempt: int, *, variant: str | None = None, delay: float = 0) -> Job:
    """``poll_task(task_id, attempt)``: the hop that expects ``attempt`` polls so far."""
    return Job(POLL, (task_id, attempt), _id("poll", task_id, attempt, variant), delay or None)


def store(task_id: str, *, variant: str | None = None) -> Job:
    """``store_task(task_id)``."""
    return Job(STORE, (task_id,), _id("store", task_id, variant))


def deliver(delivery_id: str, attempt: int, *, variant: str | None = None, delay: float = 0) -> Job:
    """``deliver_webhook(delivery_id)``, its ``attempt``-th try (0 is the first)."""
    return Job(
        DELIVER, (delivery_id,), _id("deliver", delivery_id, attempt, variant), delay or None
    )


def purge_video(task_id: str, *, variant: str | None = None) -> Job:
    """``purge_video(task_id)``: delete a deleted video's objects."""
    return Job(PURGE_VIDEO, (task_id,), _id("purge", task_id, variant))


# What the first part of each job id made here says: the function, and what the second
# part is (the crons' ids, where arq makes them, start with their name).
_ID_KINDS: dict[str, tuple[str, str | None]] = {
    "submit": (SUBMIT, "task_id"),
    "poll": (POLL, "task_id"),
    "store": (STORE, "task_id"),
    "purge": (PURGE_VIDEO, "task_id"),
    "deliver": (DELIVER, "delivery_id"),
    RECONCILE: (RECONCILE, None),
    PURGE_IDEMPOTENCY: (PURGE_IDEMPOTENCY, None),
    PURGE_UPLOADS: (PURGE_UPLOADS, None),
}


def described(job_id: str) -> dict[str, str]:
    """The log fields ``job_id`` names: ``job`` (the function) and, for a task's job,
    ``task_id`` (for a delivery, ``delivery_id``). Empty for an id not made here."""
    kind, _, rest = job_id.partition(":")
    known = _ID_KINDS.get(kind)
    if known is None:
        return {}
    function, subject = known
    fields = {"job": function}
    if subject is not None and rest:
        fields[subject] = rest.split(":", 1)[0]
    return fields


def deliveries(delivery_ids: Iterable[str]) -> list[Job]:
    """The first attempt of each new delivery (what a settlement hands over)."""
    return [deliver(d, 0) for d in delivery_ids]


async def enqueue_after_commit(redis: ArqRedis, *jobs: Job) -> bool:
    """Enqueue ``jobs`` (whose database state is already committed); False if Redis failed.

    Never raises for a Redis outage (``RedisError``, ``OSError``, timeouts): the work is
    durable in the database and the reconciler enqueues it once it is overdue.
    """
    for job in jobs:
        try:
            await enqueue_job(
                redis, job.function, *job.args, job_id=job.job_id, defer_by=job.defer_by
            )
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning(
                "enqueue_failed",
                job_id=job.job_id,
                jobs=len(jobs),
                error=type(exc).__name__,
                detail=str(exc)[:200],
            )
            return False
    return True
