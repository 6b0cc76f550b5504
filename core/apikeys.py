"""API keys: random bearer tokens stored as SHA-256 hashes, shown once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from core.ids import new_id
from core.repo import apikeys as repo
from schemas.clock import utcnow
from schemas.status import Role

KEY_PREFIX = "gv_"


@dataclass(frozen=True)
class Principal:
    key_id: str
    client_id: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def scope(self) -> str | None:
        """The client whose videos and events this principal sees; None (all) for admins."""
        return None if self.is_admin else self.client_id


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(
    conn: AsyncConnection, *, client_id: str, name: str, role: Role, key: str | None = None
) -> tuple[str, str]:
    """(key id, plaintext key). The plaintext is not stored anywhere."""
    plaintext = key or KEY_PREFIX + secrets.token_urlsafe(32)
    values = _row(plaintext, client_id=client_id, name=name, role=role)
    await repo.insert_key(conn, values)
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
    await repo.ensure_key(conn, _row(key, client_id=client_id, name=name, role=role))


async def authenticate(conn: AsyncConnection, key: str) -> Principal | None:
    """The principal of an active key, or None."""
    owner = await repo.active_by_hash(conn, hash_key(key))
    return Principal(owner.id, owner.client_id, owner.role) if owner is not None else None


async def mark_used(conn: AsyncConnection, key_id: str, at: datetime) -> None:
    await repo.mark_used(conn, key_id, at)


async def revoke(conn: AsyncConnection, key_id: str) -> bool:
    return await repo.revoke(conn, key_id)
