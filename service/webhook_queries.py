"""SQL the API runs over webhook endpoints, events and deliveries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.apikeys import Principal
from core.tables import deliveries, delivery_attempts, events, webhook_endpoints
from schemas.tables import utcnow


async def insert_endpoint(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(webhook_endpoints).values(**values))


async def endpoint(conn: AsyncConnection, client_id: str, endpoint_id: str) -> Any:
    query = select(webhook_endpoints).where(
        webhook_endpoints.c.id == endpoint_id,
        webhook_endpoints.c.client_id == client_id,
        webhook_endpoints.c.deleted_at.is_(None),
    )
    return (await conn.execute(query)).first()


async def endpoints(conn: AsyncConnection, client_id: str) -> list[Any]:
    query = (
        select(webhook_endpoints)
        .where(webhook_endpoints.c.client_id == client_id, webhook_endpoints.c.deleted_at.is_(None))
        .order_by(webhook_endpoints.c.id)
    )
    return list((await conn.execute(query)).all())


async def update_endpoint(conn: AsyncConnection, endpoint_id: str, values: dict[str, Any]) -> None:
    await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(updated_at=utcnow(), **values)
    )


def _visible_events(principal: Principal) -> Any:
    return None if principal.is_admin else events.c.client_id == principal.client_id


async def event(conn: AsyncConnection, principal: Principal, event_id: str) -> Any:
    query = select(events).where(events.c.id == event_id)
    if (clause := _visible_events(principal)) is not None:
        query = query.where(clause)
    return (await conn.execute(query)).first()


async def event_page(
    conn: AsyncConnection, principal: Principal, *, limit: int, after: str | None, kind: str | None
) -> list[Any]:
    query = select(events)
    if (clause := _visible_events(principal)) is not None:
        query = query.where(clause)
    if after is not None:
        query = query.where(events.c.id < after)
    if kind is not None:
        query = query.where(events.c.type == kind)
    return list((await conn.execute(query.order_by(events.c.id.desc()).limit(limit + 1))).all())


async def deliveries_of(conn: AsyncConnection, event_id: str) -> list[tuple[Any, list[Any]]]:
    rows = (
        await conn.execute(
            select(deliveries).where(deliveries.c.event_id == event_id).order_by(deliveries.c.id)
        )
    ).all()
    attempts = (
        await conn.execute(
            select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id.in_([r.id for r in rows]))
            .order_by(delivery_attempts.c.id)
        )
    ).all()
    return [(r, [a for a in attempts if a.delivery_id == r.id]) for r in rows]
