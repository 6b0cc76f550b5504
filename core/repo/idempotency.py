"""The ``idempotency_records`` table: one row per (client, ``Idempotency-Key``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.repo.tables import idempotency
from schemas.clock import utcnow


@dataclass(frozen=True, slots=True)
class Record:
    """A claim (``response_status`` None while its request runs) or a stored answer."""

    request_hash: str
    response_status: int | None
    response_body: dict[str, Any] | None
    created_at: datetime
    expires_at: datetime


def _key(client_id: str, key: str) -> ColumnElement[bool]:
    return (idempotency.c.client_id == client_id) & (idempotency.c.key == key)


async def find(conn: AsyncConnection, client_id: str, key: str) -> Record | None:
    query = select(
        idempotency.c.request_hash,
        idempotency.c.response_status,
        idempotency.c.response_body,
        idempotency.c.created_at,
        idempotency.c.expires_at,
    ).where(_key(client_id, key))
    row = (await conn.execute(query)).mappings().first()
    return Record(**row) if row is not None else None


async def insert_claim(
    conn: AsyncConnection,
    client_id: str,
    key: str,
    digest: str,
    *,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    """Insert an unanswered claim; raises ``IntegrityError`` if the key is taken."""
    await conn.execute(
        insert(idempotency).values(
            client_id=client_id,
            key=key,
            request_hash=digest,
            created_at=created_at,
            expires_at=expires_at,
        )
    )


async def answer(
    conn: AsyncConnection, client_id: str, key: str, status: int, body: dict[str, Any]
) -> None:
    """Store the answer a replay of the key will get."""
    await conn.execute(
        update(idempotency)
        .where(_key(client_id, key))
        .values(response_status=status, response_body=body)
    )


async def forget(conn: AsyncConnection, client_id: str, key: str, *, unanswered: bool) -> None:
    """Delete the key's record (with ``unanswered``, only while it is still a claim)."""
    query = delete(idempotency).where(_key(client_id, key))
    if unanswered:
        query = query.where(idempotency.c.response_status.is_(None))
    await conn.execute(query)


async def purge_expired(conn: AsyncConnection) -> int:
    """Delete every record past its expiry; how many went."""
    result = await conn.execute(delete(idempotency).where(idempotency.c.expires_at < utcnow()))
    return int(result.rowcount)
