"""The one place that moves a task between states (DESIGN §3).

Each transition is a single conditional UPDATE; the caller runs it inside the
transaction that also holds its side effects (ledger entry, events). A caller that
loses the race gets ``None`` and must do nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.tables import tasks
from schemas.status import TaskStatus
from schemas.tables import utcnow


async def transition(
    conn: AsyncConnection,
    task_id: str,
    expected: Iterable[TaskStatus],
    new: TaskStatus,
    **values: Any,
) -> Row[Any] | None:
    """The moved task's (client_id, user, price), or None if it was not in ``expected``."""
    result = await conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status.in_([str(s) for s in expected]))
        .values(status=str(new), updated_at=utcnow(), **values)
        .returning(tasks.c.client_id, tasks.c.user, tasks.c.price)
    )
    return result.first()
