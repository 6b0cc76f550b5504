"""SQL the workers run over tasks beyond the state transitions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.tables import tasks
from schemas.status import TaskStatus


async def load(engine: AsyncEngine, task_id: str) -> Row[Any] | None:
    async with engine.connect() as conn:
        return (await conn.execute(select(tasks).where(tasks.c.id == task_id))).first()


async def overdue(conn: AsyncConnection, before: datetime, limit: int) -> list[Any]:
    """Active tasks whose next step should have happened before ``before``."""
    query = (
        select(tasks.c.id, tasks.c.status, tasks.c.polls, tasks.c.upstream_task_id)
        .where(
            tasks.c.status.in_(
                [
                    str(s)
                    for s in (
                        TaskStatus.QUEUED,
                        TaskStatus.SUBMITTING,
                        TaskStatus.RUNNING,
                        TaskStatus.STORING,
                    )
                ]
            ),
            tasks.c.next_attempt_at < before,
        )
        .order_by(tasks.c.next_attempt_at)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())
