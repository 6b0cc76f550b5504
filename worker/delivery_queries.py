"""SQL the workers run over webhook deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.tables import deliveries, delivery_attempts, events, webhook_endpoints
from schemas.tables import utcnow
from worker.webhooks.sender import Attempt


async def load(conn: AsyncConnection, delivery_id: str) -> Any:
    query = (
        select(deliveries, events.c.body)
        .join(events, events.c.id == deliveries.c.event_id)
        .where(deliveries.c.id == delivery_id)
    )
    return (await conn.execute(query)).first()


async def endpoint(conn: AsyncConnection, endpoint_id: str) -> Any:
    query = select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
    return (await conn.execute(query)).first()


async def claim(conn: AsyncConnection, row: Any, until: datetime) -> bool:
    """Take the next attempt of a pending delivery; False if someone else did."""
    result = await conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id == row.id,
            deliveries.c.status == "pending",
            deliveries.c.attempts == row.attempts,
        )
        .values(attempts=row.attempts + 1, next_attempt_at=until)
    )
    return result.rowcount == 1


async def record(
    conn: AsyncConnection,
    delivery_id: str,
    attempt: Attempt,
    *,
    status: str,
    next_attempt_at: datetime | None,
) -> None:
    await conn.execute(
        insert(delivery_attempts).values(
            delivery_id=delivery_id,
            at=utcnow(),
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            error=attempt.error,
        )
    )
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status=status,
            next_attempt_at=next_attempt_at,
            last_status_code=attempt.status_code,
            last_error=attempt.error,
            delivered_at=utcnow() if status == "delivered" else None,
        )
    )


async def close(conn: AsyncConnection, delivery_id: str, status: str, reason: str) -> None:
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.status == "pending")
        .values(status=status, next_attempt_at=None, last_error=reason)
    )


async def disable_endpoint(conn: AsyncConnection, endpoint_id: str, reason: str) -> None:
    await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(enabled=False, disabled_reason=reason, updated_at=utcnow())
    )


async def due(conn: AsyncConnection, before: datetime, limit: int) -> list[Any]:
    query = (
        select(deliveries.c.id, deliveries.c.attempts, deliveries.c.next_attempt_at)
        .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at < before)
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def push_back(conn: AsyncConnection, row: Any, until: datetime) -> bool:
    """The reconciler's claim on an overdue delivery (one replica wins)."""
    result = await conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id == row.id,
            deliveries.c.status == "pending",
            deliveries.c.attempts == row.attempts,
            deliveries.c.next_attempt_at == row.next_attempt_at,
        )
        .values(next_attempt_at=until)
    )
    return result.rowcount == 1
