"""SQL the API runs over the ledger for reading."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.tables import entries


async def recent_entries(
    conn: AsyncConnection, client_id: str, user: str, *, limit: int, before: int | None
) -> list[Row[Any]]:
    query = select(entries).where(entries.c.client_id == client_id, entries.c.user == user)
    if before is not None:
        query = query.where(entries.c.id < before)
    return list((await conn.execute(query.order_by(entries.c.id.desc()).limit(limit + 1))).all())
