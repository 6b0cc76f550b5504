"""API keys: random bearer tokens stored as SHA-256 hashes, shown once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import insert_ignoring_conflicts
from core.ids import new_id
from core.tables import api_keys
from schemas.status import Role
from schemas.tables import utcnow

KEY_PREFIX = "gv_"


@dataclass(frozen=True)
class Principal:
    key_id: str
    client_id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(
    conn: AsyncConnection, *, client_id: str, name: str, role: Role, key: str | None = None
) -> tuple[str, str]:
    """(key id, plaintext key). The plaintext is not stored anywhere."""
    plaintext = key or KEY_PREFIX + secrets.token_urlsafe(32)
    values = _row(plaintext, client_id=client_id, name=name, role=role)
    await conn.execute(insert(api_keys).values(**values))
    return values["id"], plaintext


def _row(plaintext: str, *, client_id: str, name: str, role: Role) -> dict[str, Any]:
    return {
        "id": new_id("key"),
        "client_id": client_id,
        "name": name,
        "prefix": plaintext[:10],
        "key_hash": hash_key(plaintext),
        "role": str(role),
        "created_at": utcnow(),
    }


async def ensure_key(
    conn: AsyncConnection, key: str, *, client_id: str, name: str, role: Role
) -> None:
    """Register a key given from outside (the bootstrap admin key) unless it exists;
    safe when several replicas start at once."""
    values = _row(key, client_id=client_id, name=name, role=role)
    await conn.execute(insert_ignoring_conflicts(conn, api_keys, values))


async def authenticate(conn: AsyncConnection, key: str) -> Principal | None:
    row = (
        await conn.execute(
            select(api_keys.c.id, api_keys.c.client_id, api_keys.c.role).where(
                api_keys.c.key_hash == hash_key(key), api_keys.c.revoked_at.is_(None)
            )
        )
    ).first()
    return Principal(row.id, row.client_id, Role(row.role)) if row else None


async def mark_used(conn: AsyncConnection, key_id: str, at: datetime) -> None:
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=at))


async def revoke(conn: AsyncConnection, key_id: str) -> bool:
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount == 1
