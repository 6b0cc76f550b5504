"""The ``uploads`` table: images a client uploaded, each usable by that client alone
until it expires (``expires_at`` in the past means gone, whether or not the housekeeping
job has removed the row and its object yet)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.repo.tables import uploads


@dataclass(frozen=True, slots=True)
class Upload:
    """A whole upload row; ``size`` in bytes, ``width`` and ``height`` in pixels."""

    id: str
    client_id: str
    key: str
    size: int
    mime_type: str
    width: int
    height: int
    sha256: str
    created_at: datetime
    expires_at: datetime


_COLUMNS = [uploads.c[f.name] for f in fields(Upload)]


@dataclass(frozen=True, slots=True)
class Expired:
    """An upload past its expiry: the object to delete, then the row."""

    id: str
    key: str


async def insert_upload(conn: AsyncConnection, upload: Upload) -> None:
    await conn.execute(
        insert(uploads).values({f.name: getattr(upload, f.name) for f in fields(Upload)})
    )


async def visible(
    conn: AsyncConnection, upload_id: str, *, client_id: str, now: datetime
) -> Upload | None:
    """The client's upload if it has not expired by ``now``; None for anyone else's (so
    another client cannot tell whether the id exists)."""
    query = select(*_COLUMNS).where(
        uploads.c.id == upload_id, uploads.c.client_id == client_id, uploads.c.expires_at > now
    )
    row = (await conn.execute(query)).mappings().first()
    return Upload(**row) if row is not None else None


async def expire_now(
    conn: AsyncConnection, upload_id: str, *, client_id: str, now: datetime
) -> str | None:
    """Make the client's live upload expired at ``now`` (what ``DELETE`` does first: no
    create can use it any more); its object key, or None if there was no such upload."""
    query = (
        update(uploads)
        .where(
            uploads.c.id == upload_id, uploads.c.client_id == client_id, uploads.c.expires_at > now
        )
        .values(expires_at=now)
        .returning(uploads.c.key)
    )
    key = (await conn.execute(query)).scalar_one_or_none()
    return str(key) if key is not None else None


async def expired(conn: AsyncConnection, *, now: datetime, limit: int) -> list[Expired]:
    """Up to ``limit`` uploads expired by ``now``, oldest expiry first."""
    query = (
        select(uploads.c.id, uploads.c.key)
        .where(uploads.c.expires_at <= now)
        .order_by(uploads.c.expires_at)
        .limit(limit)
    )
    return [Expired(row.id, row.key) for row in await conn.execute(query)]


async def remove(conn: AsyncConnection, upload_id: str) -> int:
    """Delete the upload's row (its object already deleted, or never stored); 1 if it
    was there, else 0."""
    result = await conn.execute(delete(uploads).where(uploads.c.id == upload_id))
    return int(result.rowcount)
