"""SQL the API runs over video tasks (reads, the create insert, soft delete)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import Row, and_, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.apikeys import Principal
from core.tables import tasks
from schemas.status import ACTIVE, TaskStatus
from schemas.tables import utcnow


def _visible(principal: Principal) -> Any:
    clause = tasks.c.deleted_at.is_(None)
    return clause if principal.is_admin else and_(clause, tasks.c.client_id == principal.client_id)


async def get(conn: AsyncConnection, principal: Principal, task_id: str) -> Row[Any] | None:
    query = select(tasks).where(tasks.c.id == task_id, _visible(principal))
    return (await conn.execute(query)).first()


async def page(
    conn: AsyncConnection,
    principal: Principal,
    *,
    limit: int,
    descending: bool,
    after: str | None,
    user: str | None,
    statuses: list[TaskStatus] | None,
) -> list[Row[Any]]:
    """Up to ``limit + 1`` rows (the extra one tells whether there are more)."""
    query = select(tasks).where(_visible(principal))
    if after is not None:
        query = query.where(tasks.c.id < after if descending else tasks.c.id > after)
    if user is not None:
        query = query.where(tasks.c.user == user)
    if statuses is not None:
        query = query.where(tasks.c.status.in_([str(s) for s in statuses]))
    order = tasks.c.id.desc() if descending else tasks.c.id.asc()
    return list((await conn.execute(query.order_by(order).limit(limit + 1))).all())


_ACTIVE_COUNT = select(func.count()).where(
    tasks.c.client_id == bindparam("p_client"),
    tasks.c.user == bindparam("p_user"),
    tasks.c.status.in_([str(s) for s in ACTIVE]),
)
_INSERT_TASK = insert(tasks)


def _scalar_default(column: Any) -> Any:
    arg = getattr(column.default, "arg", None)
    return None if callable(arg) else arg


# Column defaults the create does not set, so the new row can be presented without
# reading it back.
_UNSET = {c.key: _scalar_default(c) for c in tasks.c}


async def active_count(conn: AsyncConnection, client_id: str, user: str) -> int:
    result = await conn.execute(_ACTIVE_COUNT, {"p_client": client_id, "p_user": user})
    return int(result.scalar_one())


async def insert_task(conn: AsyncConnection, values: dict[str, Any]) -> SimpleNamespace:
    """Insert; the new row as the presenter sees it, with no second round trip."""
    await conn.execute(_INSERT_TASK, values)
    return SimpleNamespace(**{**_UNSET, **values})


async def mark_deleted(conn: AsyncConnection, task_id: str) -> None:
    await conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id)
        .values(deleted_at=utcnow(), updated_at=utcnow(), storage_status="deleted")
    )
