"""The ``runtime_config`` table: one row (id 1) holding the runtime config as JSON."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.repo._sql import insert_ignoring_conflicts
from core.repo.tables import runtime_config
from schemas.clock import utcnow

_ROW = 1


async def seed(conn: AsyncConnection, document: dict[str, Any]) -> None:
    """Write the first document unless one exists (the first of several replicas wins)."""
    values = {"id": _ROW, "version": 1, "document": document, "updated_at": utcnow()}
    await conn.execute(insert_ignoring_conflicts(conn, runtime_config, values))


async def document(conn: AsyncConnection, *, for_update: bool = False) -> dict[str, Any] | None:
    """The stored document (None before seeding); ``for_update`` locks the row."""
    query = select(runtime_config.c.document).where(runtime_config.c.id == _ROW)
    if for_update:
        query = query.with_for_update()
    found: dict[str, Any] | None = (await conn.execute(query)).scalar_one_or_none()
    return found


async def replace(conn: AsyncConnection, document: dict[str, Any]) -> None:
    """Store a new document, bumping the row's version."""
    await conn.execute(
        update(runtime_config)
        .where(runtime_config.c.id == _ROW)
        .values(document=document, version=runtime_config.c.version + 1, updated_at=utcnow())
    )
