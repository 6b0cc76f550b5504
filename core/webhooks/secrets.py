"""Signing secrets of endpoints and clients: encrypted at rest, rotated with overlap."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from core.repo import webhooks as repo
from core.repo.webhooks import ClientSecret, Endpoint
from core.secrets import SecretBox
from core.webhooks.signing import new_secret
from schemas.clock import utcnow

ROTATION_OVERLAP = timedelta(hours=24)


def live_secrets(box: SecretBox, row: Endpoint | ClientSecret, now: datetime) -> list[str]:
    """The current secret, plus the previous one during its 24 h overlap."""
    found = [box.decrypt(row.secret)]
    expires = row.previous_secret_expires_at
    if row.previous_secret and expires is not None and expires > now:
        found.append(box.decrypt(row.previous_secret))
    return found


async def client_secret_row(conn: AsyncConnection, box: SecretBox, client_id: str) -> ClientSecret:
    """The client's secret row, created on first use."""
    return await repo.client_secret(conn, client_id, box.encrypt(new_secret()))


async def rotate_client_secret(conn: AsyncConnection, box: SecretBox, client_id: str) -> str:
    """A new secret for the client (shown once); the old one stays valid for 24 h."""
    row = await client_secret_row(conn, box, client_id)
    fresh = new_secret()
    await repo.update_client_secret(conn, client_id, _rotation(box, row.secret, fresh))
    return fresh


async def rotate_endpoint_secret(
    conn: AsyncConnection, box: SecretBox, endpoint_id: str, current: str
) -> str:
    """A new secret for the endpoint (shown once); the old one stays valid for 24 h."""
    fresh = new_secret()
    await repo.update_endpoint(conn, endpoint_id, _rotation(box, current, fresh))
    return fresh


def _rotation(box: SecretBox, current_encrypted: str, fresh: str) -> dict[str, Any]:
    return {
        "secret": box.encrypt(fresh),
        "previous_secret": current_encrypted,
        "previous_secret_expires_at": utcnow() + ROTATION_OVERLAP,
    }
