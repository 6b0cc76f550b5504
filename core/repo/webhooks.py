"""The ``webhook_endpoints`` and ``client_secrets`` tables: where a client's events go
and the (encrypted) secrets that sign them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Column, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.repo._sql import insert_ignoring_conflicts
from core.repo.tables import client_secrets, webhook_endpoints
from schemas.clock import utcnow


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A registered endpoint. ``secret``/``previous_secret`` are ciphertext."""

    id: str
    client_id: str
    url: str
    description: str
    enabled_events: list[str]
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """A client's signing secret for per-request ``webhook_url`` deliveries (ciphertext)."""

    client_id: str
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Subscription:
    """An enabled endpoint as the outbox fans an event out to it."""

    id: str
    url: str
    enabled_events: list[str]


_ENDPOINT = [webhook_endpoints.c[f.name] for f in fields(Endpoint)]
_CLIENT_SECRET = [client_secrets.c[f.name] for f in fields(ClientSecret)]


async def insert_endpoint(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    await conn.execute(insert(webhook_endpoints).values(**values))


async def endpoint(
    conn: AsyncConnection, endpoint_id: str, *, client_id: str | None = None
) -> Endpoint | None:
    """The endpoint, deleted or not; with ``client_id``, only that client's and not deleted."""
    query = select(*_ENDPOINT).where(webhook_endpoints.c.id == endpoint_id)
    if client_id is not None:
        query = query.where(
            webhook_endpoints.c.client_id == client_id, webhook_endpoints.c.deleted_at.is_(None)
        )
    row = (await conn.execute(query)).mappings().first()
    return Endpoint(**row) if row is not None else None


async def endpoints(conn: AsyncConnection, client_id: str) -> list[Endpoint]:
    """The client's endpoints that are not deleted, oldest first."""
    query = (
        select(*_ENDPOINT)
        .where(webhook_endpoints.c.client_id == client_id, webhook_endpoints.c.deleted_at.is_(None))
        .order_by(webhook_endpoints.c.id)
    )
    return [Endpoint(**r) for r in (await conn.execute(query)).mappings()]


async def subscriptions(conn: AsyncConnection, client_id: str) -> list[Subscription]:
    """The client's enabled, not deleted endpoints, oldest first."""
    query = (
        select(webhook_endpoints.c.id, webhook_endpoints.c.url, webhook_endpoints.c.enabled_events)
        .where(
            webhook_endpoints.c.client_id == client_id,
            webhook_endpoints.c.enabled.is_(True),
            webhook_endpoints.c.deleted_at.is_(None),
        )
        .order_by(webhook_endpoints.c.id)
    )
    return [Subscription(**r) for r in (await conn.execute(query)).mappings()]


async def update_endpoint(
    conn: AsyncConnection, endpoint_id: str, values: Mapping[str, Any]
) -> None:
    """Set ``values`` (column name → value) and ``updated_at``."""
    await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(updated_at=utcnow(), **values)
    )


async def disable_endpoint(conn: AsyncConnection, endpoint_id: str, reason: str) -> None:
    await update_endpoint(conn, endpoint_id, {"enabled": False, "disabled_reason": reason})


async def client_secret(
    conn: AsyncConnection, client_id: str, encrypted_if_new: str
) -> ClientSecret:
    """The client's secret row, created with ``encrypted_if_new`` on first use."""
    values = {"client_id": client_id, "secret": encrypted_if_new, "created_at": utcnow()}
    await conn.execute(insert_ignoring_conflicts(conn, client_secrets, values))
    query = select(*_CLIENT_SECRET).where(client_secrets.c.client_id == client_id)
    return ClientSecret(**(await conn.execute(query)).mappings().one())


async def update_client_secret(
    conn: AsyncConnection, client_id: str, values: Mapping[str, Any]
) -> None:
    await conn.execute(
        update(client_secrets).where(client_secrets.c.client_id == client_id).values(**values)
    )


@dataclass(frozen=True, slots=True)
class Ciphertexts:
    """One row's stored secrets, as a key rotation sees them: ``key`` is the endpoint id
    or the client id."""

    key: str
    secret: str
    previous_secret: str | None


def _secret_columns(of: Literal["endpoints", "clients"]) -> tuple[Table, Column[Any]]:
    if of == "endpoints":
        return webhook_endpoints, webhook_endpoints.c.id
    return client_secrets, client_secrets.c.client_id


async def ciphertexts(
    conn: AsyncConnection, of: Literal["endpoints", "clients"]
) -> list[Ciphertexts]:
    """Every row's secrets (deleted endpoints too), by key."""
    table, key = _secret_columns(of)
    query = select(key.label("key"), table.c.secret, table.c.previous_secret).order_by(key)
    return [Ciphertexts(**r) for r in (await conn.execute(query)).mappings()]


async def replace_ciphertexts(
    conn: AsyncConnection,
    of: Literal["endpoints", "clients"],
    old: Ciphertexts,
    new: Ciphertexts,
) -> bool:
    """Store ``new`` if the row still holds ``old`` (False: it changed meanwhile, e.g. a
    concurrent rotation, and is left as it is)."""
    table, key = _secret_columns(of)
    result = await conn.execute(
        update(table)
        .where(
            key == old.key,
            table.c.secret == old.secret,
            table.c.previous_secret.is_not_distinct_from(old.previous_secret),
        )
        .values(secret=new.secret, previous_secret=new.previous_secret)
    )
    return result.rowcount == 1
