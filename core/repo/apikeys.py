"""The ``api_keys`` table: hashed bearer keys and their roles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.repo._sql import insert_ignoring_conflicts
from core.repo.tables import api_keys
from schemas.clock import utcnow
from schemas.status import Role


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """Who an active key belongs to."""

    id: str
    client_id: str
    role: Role


async def insert_key(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    await conn.execute(insert(api_keys).values(**values))


async def ensure_key(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    """Insert unless a key with the same id or hash exists (replicas start together)."""
    await conn.execute(insert_ignoring_conflicts(conn, api_keys, dict(values)))


async def active_by_hash(conn: AsyncConnection, key_hash: str) -> KeyOwner | None:
    query = select(api_keys.c.id, api_keys.c.client_id, api_keys.c.role).where(
        api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None)
    )
    row = (await conn.execute(query)).first()
    return KeyOwner(row.id, row.client_id, Role(row.role)) if row is not None else None


async def mark_used(conn: AsyncConnection, key_id: str, at: datetime) -> None:
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=at))


async def revoke(conn: AsyncConnection, key_id: str) -> bool:
    """Revoke an active key; False if there is no such active key."""
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount == 1
