"""Pieces every job uses: pacing, enqueueing the next step, the task deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from core.settlement import Settled
from schemas import jobs
from schemas.config import RuntimeConfig
from schemas.problems import FailureCode
from schemas.status import TaskStatus
from schemas.tables import utcnow
from worker import task_queries
from worker.context import WorkerContext
from worker.schedule import Pacing
from worker.upstream.registry import Provider

log = structlog.get_logger("worker")


def pacing(context: WorkerContext, provider: Provider | None = None) -> Pacing:
    """Polling is `callback_poll_factor` times sparser only where a callback will come:
    a public URL is set and `provider` calls back. Without a provider (backoff only),
    the factor is 1."""
    s = context.settings
    calls_back = bool(s.public_url) and provider is not None and provider.calls_back
    factor = s.callback_poll_factor if calls_back else 1.0
    return Pacing(
        s.poll_first_delay, s.poll_min_interval, s.poll_max_interval, s.retry_base_seconds, factor
    )


def expired(task: Any, config: RuntimeConfig, now: datetime | None = None) -> bool:
    deadline: datetime = task.created_at + timedelta(seconds=config.task_timeout_seconds)
    return (now or utcnow()) >= deadline


def timeout_message(config: RuntimeConfig) -> tuple[FailureCode, str]:
    return FailureCode.TIMEOUT, f"The video did not finish within {config.task_timeout_seconds} s."


async def enqueue_poll(context: WorkerContext, task_id: str, attempt: int, delay: float) -> None:
    await context.redis.enqueue_job(
        jobs.POLL, task_id, attempt, _job_id=jobs.poll_job_id(task_id, attempt), _defer_by=delay
    )


async def enqueue_store(context: WorkerContext, task_id: str) -> None:
    await context.redis.enqueue_job(jobs.STORE, task_id, _job_id=jobs.store_job_id(task_id))


async def enqueue_submit(context: WorkerContext, task_id: str, delay: float, attempt: int) -> None:
    await context.redis.enqueue_job(
        jobs.SUBMIT, task_id, _job_id=f"{jobs.submit_job_id(task_id)}:{attempt}", _defer_by=delay
    )


def later(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


@contextlib.asynccontextmanager
async def heartbeat(
    context: WorkerContext, task_id: str, status: TaskStatus
) -> AsyncIterator[None]:
    """While the block runs, keep ``next_attempt_at`` ahead so the reconciler waits."""
    grace = context.settings.reconcile_grace_seconds

    async def beat() -> None:
        while True:
            async with context.engine.begin() as conn:
                await task_queries.extend(conn, task_id, status, later(grace))
            await asyncio.sleep(grace / 3)

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


async def finish(
    context: WorkerContext,
    settle: Callable[..., Awaitable[Settled | None]],
    task_id: str,
    *args: Any,
    **kwargs: Any,
) -> bool:
    """Run a settlement (complete / fail / cancel) in its own transaction, then hand its
    webhook deliveries to the queue. False if the task had already moved on."""
    async with context.engine.begin() as conn:
        settled = await settle(conn, task_id, *args, **kwargs)
    if settled is None:
        return False
    await dispatch(context, settled.deliveries)
    return True


async def dispatch(context: WorkerContext, delivery_ids: list[str]) -> None:
    for delivery_id in delivery_ids:
        await context.redis.enqueue_job(
            jobs.DELIVER, delivery_id, _job_id=jobs.deliver_job_id(delivery_id, 0)
        )
