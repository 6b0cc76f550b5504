"""API keys: random bearer tokens stored as SHA-256 hashes, shown once.

A key acts for a client id, the scope of what it sees (videos, credits, events). Admin
keys all act for ``ADMIN_CLIENT``; client keys never for a reserved id (``admin``,
``system``, in any case) nor for an id an admin key has used, so no tenant can share the
admin's scope by its name.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from core.ids import new_id
from core.repo import apikeys as repo
from core.repo.apikeys import KeyRecord
from schemas.clock import utcnow
from schemas.status import Role

KEY_PREFIX = "gv_"
ADMIN_CLIENT = "admin"
RESERVED_CLIENTS = frozenset({ADMIN_CLIENT, "system"})
# The name of the key registered from GOOGLE_VIDEO_ADMIN_KEY (core.bootstrap).
BOOTSTRAP_NAME = "bootstrap"


class ClientRefused(ValueError):
    """The client id (or key name) of a new key would share a scope it must not."""


class ClientExists(ClientRefused):
    """A key asked for a new client whose id already has keys."""

    def __init__(self, client_id: str) -> None:
        super().__init__(
            f"the client {client_id!r} already exists; pass --client {client_id} to add a key to it"
        )
        self.client_id = client_id


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
    conn: AsyncConnection,
    *,
    client_id: str,
    name: str,
    role: Role,
    key: str | None = None,
    new_client: bool = False,
) -> tuple[str, str]:
    """(key id, plaintext key). The plaintext is not stored anywhere.

    Raises ``ClientRefused`` for an admin key acting for another client than
    ``ADMIN_CLIENT``, a client key acting for a reserved id or one an admin key uses, a
    key named like the bootstrap key, or (``new_client``) a client id that already has keys.
    """
    await _check_client(conn, client_id, name, role, new_client=new_client)
    plaintext = key or KEY_PREFIX + secrets.token_urlsafe(32)
    values = _row(plaintext, client_id=client_id, name=name, role=role)
    await repo.insert_key(conn, values)
    return values["id"], plaintext


async def issue_key(
    conn: AsyncConnection, *, name: str, role: Role, client: str | None
) -> tuple[str, str]:
    """`create_key` as an operator asks for it (``POST /v1/admin/keys``, ``keys create``):
    a key for the existing `client`, or with `client` None one starting a new client --
    ``ADMIN_CLIENT`` for an admin key, else the client named `name`.

    Returns (key id, plaintext key); raises as `create_key`."""
    default = ADMIN_CLIENT if role == Role.ADMIN else name
    return await create_key(
        conn, client_id=client or default, name=name, role=role, new_client=client is None
    )


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


async def _check_client(
    conn: AsyncConnection, client_id: str, name: str, role: Role, *, new_client: bool
) -> None:
    if name == BOOTSTRAP_NAME:
        raise ClientRefused(f"the key name {name!r} is reserved for GOOGLE_VIDEO_ADMIN_KEY")
    if role == Role.ADMIN:
        if client_id != ADMIN_CLIENT:
            raise ClientRefused(f"admin keys act for the client {ADMIN_CLIENT!r}")
        return
    if client_id.lower() in RESERVED_CLIENTS:
        raise ClientRefused(f"the client id {client_id!r} is reserved")
    roles = await repo.roles_of_client(conn, client_id)
    if Role.ADMIN in roles:
        raise ClientRefused(f"the client id {client_id!r} belongs to admin keys")
    if new_client and roles:
        raise ClientExists(client_id)


async def register_bootstrap(conn: AsyncConnection, key: str) -> int:
    """Register ``key`` (GOOGLE_VIDEO_ADMIN_KEY) as the bootstrap admin key unless it
    exists, and revoke any earlier bootstrap key; the number revoked. Safe when several
    replicas start at once. A key that was already revoked (a replica still configured
    with the key rotated away, or a rollback of the secret) revokes nothing: it must not
    lock out the key that replaced it; it stays revoked itself (``keys create`` or a new
    value brings an admin key back)."""
    row = _row(key, client_id=ADMIN_CLIENT, name=BOOTSTRAP_NAME, role=Role.ADMIN)
    await repo.ensure_key(conn, row)
    if await repo.active_by_hash(conn, row["key_hash"]) is None:
        return 0
    return await repo.revoke_named_except(
        conn, client_id=ADMIN_CLIENT, name=BOOTSTRAP_NAME, keep_hash=row["key_hash"]
    )


async def authenticate(conn: AsyncConnection, key: str) -> Principal | None:
    """The principal of an active key, or None."""
    owner = await repo.active_by_hash(conn, hash_key(key))
    return Principal(owner.id, owner.client_id, owner.role) if owner is not None else None


async def mark_used(conn: AsyncConnection, key_id: str, at: datetime) -> None:
    await repo.mark_used(conn, key_id, at)


async def revoke(conn: AsyncConnection, key_id: str) -> bool:
    return await repo.revoke(conn, key_id)


async def find(conn: AsyncConnection, key_id: str) -> KeyRecord | None:
    return await repo.key(conn, key_id)


async def list_keys(conn: AsyncConnection, *, include_revoked: bool = True) -> list[KeyRecord]:
    return await repo.keys(conn, include_revoked=include_revoked)
