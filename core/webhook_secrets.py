"""Signing secrets of endpoints and clients: encrypted at rest, rotated with overlap."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import insert_ignoring_conflicts
from core.secrets import SecretBox
from core.tables import client_secrets, webhook_endpoints
from schemas.tables import utcnow
from schemas.webhooks import new_secret

ROTATION_OVERLAP = timedelta(hours=24)


def live_secrets(box: SecretBox, row: Any, now: datetime) -> list[str]:
    """The current secret, plus the previous one during its 24 h overlap."""
    found = [box.decrypt(row.secret)]
    expires = row.previous_secret_expires_at
    if row.previous_secret and expires is not None and expires > now:
        found.append(box.decrypt(row.previous_secret))
    return found


async def client_secret_row(conn: AsyncConnection, box: SecretBox, client_id: str) -> Any:
    """The client's secret row, created on first use."""
    values = {"client_id": client_id, "secret": box.encrypt(new_secret()), "created_at": utcnow()}
    await conn.execute(insert_ignoring_conflicts(conn, client_secrets, values))
    query = select(client_secrets).where(client_secrets.c.client_id == client_id)
    return (await conn.execute(query)).one()


async def rotate_client_secret(conn: AsyncConnection, box: SecretBox, client_id: str) -> str:
    row = await client_secret_row(conn, box, client_id)
    fresh = new_secret()
    await conn.execute(
        update(client_secrets)
        .where(client_secrets.c.client_id == client_id)
        .values(**_rotation(box, row.secret, fresh))
    )
    return fresh


async def rotate_endpoint_secret(
    conn: AsyncConnection, box: SecretBox, endpoint_id: str, current: str
) -> str:
    fresh = new_secret()
    await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(updated_at=utcnow(), **_rotation(box, current, fresh))
    )
    return fresh


def _rotation(box: SecretBox, current_encrypted: str, fresh: str) -> dict[str, Any]:
    return {
        "secret": box.encrypt(fresh),
        "previous_secret": current_encrypted,
        "previous_secret_expires_at": utcnow() + ROTATION_OVERLAP,
    }
