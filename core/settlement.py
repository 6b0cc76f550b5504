"""Terminal transitions together with their exactly-once side effects: the ledger
entry and the webhook event (outbox), in the caller's transaction.

This is the one place that ends a task; non-terminal moves call
``core.repo.tasks.transition`` directly (one conditional UPDATE each).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from core.metrics import COMPLETION_LAG, CREDITS, TASK_POLLS, TASKS_FINISHED
from core.repo import credits
from core.repo.tasks import Owner, transition
from core.webhooks import outbox
from schemas.clock import utcnow
from schemas.problems import FailureCode
from schemas.status import ACTIVE, TaskStatus


@dataclass(frozen=True)
class Settled:
    """The task ended here; dispatch these deliveries once the transaction commits."""

    deliveries: list[str] = field(default_factory=list)


async def complete(conn: AsyncConnection, task_id: str, **video: Any) -> Settled | None:
    """storing → completed, capturing the hold."""
    now = utcnow()
    moved = await transition(
        conn,
        task_id,
        [TaskStatus.STORING],
        TaskStatus.COMPLETED,
        completed_at=now,
        next_attempt_at=None,
        progress=100,
        **video,
    )
    if moved is None:
        return None
    await credits.capture(conn, moved.client_id, moved.user, task_id, moved.price)
    settled = Settled(await outbox.record(conn, task_id))
    _count(TaskStatus.COMPLETED, moved, "captured")
    if moved.upstream_finish_time is not None:
        # Clocks differ (the provider's and ours): a negative lag is clock skew, not speed.
        lag = (now - moved.upstream_finish_time).total_seconds()
        COMPLETION_LAG.labels(moved.model).observe(max(0.0, lag))
    return settled


async def fail(
    conn: AsyncConnection,
    task_id: str,
    code: FailureCode,
    message: str,
    *,
    expected: Iterable[TaskStatus] = ACTIVE,
    **values: Any,
) -> Settled | None:
    """Any active state → failed, releasing the hold."""
    return await _end(conn, task_id, TaskStatus.FAILED, code, message, expected, values)


async def cancel(conn: AsyncConnection, task_id: str) -> Settled | None:
    """Any active state → cancelled, releasing the hold."""
    return await _end(
        conn,
        task_id,
        TaskStatus.CANCELLED,
        FailureCode.CANCELLED,
        "The video was cancelled.",
        ACTIVE,
        {},
    )


async def _end(
    conn: AsyncConnection,
    task_id: str,
    status: TaskStatus,
    code: FailureCode,
    message: str,
    expected: Iterable[TaskStatus],
    values: dict[str, Any],
) -> Settled | None:
    moved = await transition(
        conn,
        task_id,
        expected,
        status,
        error_code=str(code),
        error_message=message,
        completed_at=utcnow(),
        next_attempt_at=None,
        **values,
    )
    if moved is None:
        return None
    await credits.release(conn, moved.client_id, moved.user, task_id, moved.price)
    settled = Settled(await outbox.record(conn, task_id))
    _count(status, moved, "released")
    return settled


def _count(status: TaskStatus, moved: Owner, action: str) -> None:
    """Metrics of an ending, counted when its statements succeeded (a transaction that
    then fails to commit still counts: the counters may run ahead by such rare endings)."""
    TASKS_FINISHED.labels(str(status), moved.model).inc()
    TASK_POLLS.labels(str(status)).observe(moved.polls)
    CREDITS.labels(action).inc(moved.price)
