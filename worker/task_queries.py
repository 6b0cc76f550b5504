"""SQL the workers run over tasks beyond the state transitions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import autocommit
from core.tables import tasks
from schemas.status import ACTIVE, TaskStatus

_POLL_VIEW = select(
    tasks.c.id,
    tasks.c.status,
    tasks.c.polls,
    tasks.c.model,
    tasks.c.upstream_task_id,
    tasks.c.created_at,
    tasks.c.upstream_submit_time,
    tasks.c.upstream_response,
).where(tasks.c.id == bindparam("p_id"))


async def load_for_poll(engine: AsyncEngine, task_id: str) -> Any:
    """The few columns a poll hop needs (the hop runs thousands of times a minute)."""
    async with autocommit(engine) as conn:
        return (await conn.execute(_POLL_VIEW, {"p_id": task_id})).first()


async def load(engine: AsyncEngine, task_id: str) -> Row[Any] | None:
    async with engine.connect() as conn:
        return (await conn.execute(select(tasks).where(tasks.c.id == task_id))).first()


async def overdue(conn: AsyncConnection, before: datetime, limit: int) -> list[Any]:
    """Active tasks whose next step should have happened before ``before``."""
    query = (
        select(
            tasks.c.id,
            tasks.c.status,
            tasks.c.polls,
            tasks.c.created_at,
            tasks.c.next_attempt_at,
        )
        .where(tasks.c.status.in_([str(s) for s in ACTIVE]), tasks.c.next_attempt_at < before)
        .order_by(tasks.c.next_attempt_at)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def claim_overdue(conn: AsyncConnection, row: Any, until: datetime) -> bool:
    """Push an overdue task's deadline to ``until`` if nobody touched it since we read it."""
    result = await conn.execute(
        update(tasks)
        .where(
            tasks.c.id == row.id,
            tasks.c.status == row.status,
            tasks.c.polls == row.polls,
            tasks.c.next_attempt_at == row.next_attempt_at,
        )
        .values(next_attempt_at=until)
    )
    return result.rowcount == 1


async def extend(conn: AsyncConnection, task_id: str, status: TaskStatus, until: datetime) -> bool:
    """A running job's heartbeat: keep the reconciler away while it makes progress."""
    result = await conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status == str(status))
        .values(next_attempt_at=until)
    )
    return result.rowcount == 1


async def advance_poll(conn: AsyncConnection, task: Any, **values: Any) -> bool:
    """Record a poll hop, only if no other hop for this task got there first."""
    result = await conn.execute(
        update(tasks)
        .where(
            tasks.c.id == task.id,
            tasks.c.status == str(TaskStatus.RUNNING),
            tasks.c.polls == task.polls,
        )
        .values(polls=task.polls + 1, **values)
    )
    return result.rowcount == 1


async def begin_store(conn: AsyncConnection, task_id: str) -> Any:
    """Count one more store attempt of a storing task: its (store_attempts,
    upstream_video_url, model), or None if it is not storing."""
    result = await conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status == str(TaskStatus.STORING))
        .values(store_attempts=tasks.c.store_attempts + 1)
        .returning(tasks.c.store_attempts, tasks.c.upstream_video_url, tasks.c.model)
    )
    return result.first()
