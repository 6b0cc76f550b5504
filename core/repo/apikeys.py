"""The ``api_keys`` table: hashed bearer keys and their roles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
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


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key as ``google-video keys list`` shows it (never its hash)."""

    id: str
    prefix: str
    client_id: str
    name: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


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


_RECORD = (
    api_keys.c.id,
    api_keys.c.prefix,
    api_keys.c.client_id,
    api_keys.c.name,
    api_keys.c.role,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.revoked_at,
)


async def keys(conn: AsyncConnection, *, include_revoked: bool) -> list[KeyRecord]:
    """Every key (active ones only unless ``include_revoked``), oldest first."""
    query = select(*_RECORD).order_by(api_keys.c.created_at, api_keys.c.id)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    rows = (await conn.execute(query)).mappings()
    return [KeyRecord(**{**r, "role": Role(r["role"])}) for r in rows]


async def key(conn: AsyncConnection, key_id: str) -> KeyRecord | None:
    row = (await conn.execute(select(*_RECORD).where(api_keys.c.id == key_id))).mappings().first()
    return KeyRecord(**{**row, "role": Role(row["role"])}) if row is not None else None


async def roles_of_client(conn: AsyncConnection, client_id: str) -> set[Role]:
    """The roles of the keys (revoked too) acting for ``client_id``, compared without case."""
    query = (
        select(api_keys.c.role)
        .where(func.lower(api_keys.c.client_id) == client_id.lower())
        .distinct()
    )
    return {Role(r) for r in (await conn.execute(query)).scalars()}


async def revoke_named_except(
    conn: AsyncConnection, *, client_id: str, name: str, keep_hash: str
) -> int:
    """Revoke every active key of ``client_id`` called ``name`` but the one hashed
    ``keep_hash``; the number revoked."""
    result = await conn.execute(
        update(api_keys)
        .where(
            api_keys.c.client_id == client_id,
            api_keys.c.name == name,
            api_keys.c.key_hash != keep_hash,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount)
