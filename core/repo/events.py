"""The ``events``, ``deliveries`` and ``delivery_attempts`` tables: the webhook outbox.

An event is written in the transaction that ends its task; each delivery is one target
(an endpoint or a per-request URL) with its retry state; each attempt is one HTTP try.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.repo.tables import deliveries, delivery_attempts, events, tasks
from schemas.clock import utcnow
from schemas.status import DeliveryStatus, EventType


@dataclass(frozen=True, slots=True)
class Event:
    """An event; ``body`` holds the exact JSON bytes every delivery sends."""

    id: str
    client_id: str
    type: EventType
    task_id: str
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    """One recorded HTTP try; ``status_code`` None when no answer came."""

    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    event_id: str
    client_id: str
    endpoint_id: str | None
    url: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A delivery with the event body it sends (what the delivery job works on)."""

    id: str
    event_id: str
    client_id: str
    endpoint_id: str | None
    url: str
    status: DeliveryStatus
    attempts: int
    body: str
    created_at: datetime  # the retry schedule is measured from here
    task_id: str
    request_id: str | None  # the X-Request-ID of the task's create


@dataclass(frozen=True, slots=True)
class Due:
    """A pending delivery whose next attempt is late, as the reconciler saw it."""

    id: str
    attempts: int
    next_attempt_at: datetime


_EVENT = [events.c[f.name] for f in fields(Event)]
_DELIVERY = [deliveries.c[f.name] for f in fields(Delivery)]
_ATTEMPT = [delivery_attempts.c[f.name] for f in fields(Attempt)]
_PENDING = str(DeliveryStatus.PENDING)


def _event(row: Mapping[Any, Any]) -> Event:
    return Event(**{**row, "type": EventType(row["type"])})


def _delivery(row: Mapping[Any, Any]) -> Delivery:
    return Delivery(**{**row, "status": DeliveryStatus(row["status"])})


async def insert_event(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    await conn.execute(insert(events).values(**values))


def _visible(client_id: str | None) -> ColumnElement[bool] | None:
    return None if client_id is None else events.c.client_id == client_id


async def event(conn: AsyncConnection, event_id: str, *, client_id: str | None) -> Event | None:
    """The event, if it is ``client_id``'s (any client's when None)."""
    query = select(*_EVENT).where(events.c.id == event_id)
    if (clause := _visible(client_id)) is not None:
        query = query.where(clause)
    row = (await conn.execute(query)).mappings().first()
    return _event(row) if row is not None else None


async def event_page(
    conn: AsyncConnection,
    *,
    client_id: str | None,
    limit: int,
    after: str | None,
    kind: EventType | None,
) -> list[Event]:
    """Up to ``limit + 1`` events, newest first, older than the cursor ``after``."""
    query = select(*_EVENT)
    if (clause := _visible(client_id)) is not None:
        query = query.where(clause)
    if after is not None:
        query = query.where(events.c.id < after)
    if kind is not None:
        query = query.where(events.c.type == str(kind))
    rows = (await conn.execute(query.order_by(events.c.id.desc()).limit(limit + 1))).mappings()
    return [_event(r) for r in rows]


async def insert_deliveries(conn: AsyncConnection, values: Sequence[Mapping[str, Any]]) -> None:
    if values:
        await conn.execute(insert(deliveries), [dict(v) for v in values])


async def deliveries_of(
    conn: AsyncConnection,
    event_id: str,
    *,
    limit: int,
    after: str | None = None,
    only: Sequence[str] | None = None,
) -> list[tuple[Delivery, list[Attempt]]]:
    """Up to ``limit + 1`` deliveries of the event after the cursor ``after`` (or just the
    ids ``only``), each with its attempts, both oldest first: two queries, the attempts
    grouped by delivery in one pass (a delivery has at most one attempt per step of the
    retry schedule)."""
    query = select(*_DELIVERY).where(deliveries.c.event_id == event_id)
    if after is not None:
        query = query.where(deliveries.c.id > after)
    if only is not None:
        query = query.where(deliveries.c.id.in_(list(only)))
    query = query.order_by(deliveries.c.id).limit(limit + 1)
    found = [_delivery(r) for r in (await conn.execute(query)).mappings()]
    by_delivery: dict[str, list[Attempt]] = {d.id: [] for d in found}
    if found:
        attempts = await conn.execute(
            select(delivery_attempts.c.delivery_id, *_ATTEMPT)
            .where(delivery_attempts.c.delivery_id.in_(list(by_delivery)))
            .order_by(delivery_attempts.c.id)
        )
        for row in attempts.mappings():
            by_delivery[row["delivery_id"]].append(
                Attempt(row["at"], row["status_code"], row["latency_ms"], row["error"])
            )
    return [(d, by_delivery[d.id]) for d in found]


async def outgoing(conn: AsyncConnection, delivery_id: str) -> Outgoing | None:
    query = (
        select(
            deliveries.c.id,
            deliveries.c.event_id,
            deliveries.c.client_id,
            deliveries.c.endpoint_id,
            deliveries.c.url,
            deliveries.c.status,
            deliveries.c.attempts,
            events.c.body,
            deliveries.c.created_at,
            events.c.task_id,
            tasks.c.request_id,
        )
        .join(events, events.c.id == deliveries.c.event_id)
        .outerjoin(tasks, tasks.c.id == events.c.task_id)
        .where(deliveries.c.id == delivery_id)
    )
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    return Outgoing(**{**row, "status": DeliveryStatus(row["status"])})


async def claim(conn: AsyncConnection, delivery: Outgoing, until: datetime) -> bool:
    """Take the next attempt of a pending delivery; False if someone else did."""
    result = await conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id == delivery.id,
            deliveries.c.status == _PENDING,
            deliveries.c.attempts == delivery.attempts,
        )
        .values(attempts=delivery.attempts + 1, next_attempt_at=until)
    )
    return result.rowcount == 1


async def record(
    conn: AsyncConnection,
    delivery_id: str,
    *,
    status_code: int | None,
    latency_ms: int,
    error: str | None,
    status: DeliveryStatus,
    next_attempt_at: datetime | None,
) -> None:
    """Append one attempt and move the delivery to ``status`` (with its next due time)."""
    now = utcnow()
    await conn.execute(
        insert(delivery_attempts).values(
            delivery_id=delivery_id,
            at=now,
            status_code=status_code,
            latency_ms=latency_ms,
            error=error,
        )
    )
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status=str(status),
            next_attempt_at=next_attempt_at,
            last_status_code=status_code,
            last_error=error,
            delivered_at=now if status == DeliveryStatus.DELIVERED else None,
        )
    )


async def close(
    conn: AsyncConnection, delivery_id: str, status: DeliveryStatus, reason: str
) -> None:
    """End a pending delivery without an attempt (its endpoint is gone)."""
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.status == _PENDING)
        .values(status=str(status), next_attempt_at=None, last_error=reason)
    )


async def due(conn: AsyncConnection, before: datetime, limit: int) -> list[Due]:
    """Pending deliveries whose next attempt should have happened before ``before``."""
    query = (
        select(deliveries.c.id, deliveries.c.attempts, deliveries.c.next_attempt_at)
        .where(deliveries.c.status == _PENDING, deliveries.c.next_attempt_at < before)
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
    )
    return [Due(**r) for r in (await conn.execute(query)).mappings()]


async def push_back(conn: AsyncConnection, delivery: Due, until: datetime) -> bool:
    """The reconciler's claim on an overdue delivery (one replica wins)."""
    result = await conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id == delivery.id,
            deliveries.c.status == _PENDING,
            deliveries.c.attempts == delivery.attempts,
            deliveries.c.next_attempt_at == delivery.next_attempt_at,
        )
        .values(next_attempt_at=until)
    )
    return result.rowcount == 1


async def pending_count(conn: AsyncConnection) -> int:
    """How many deliveries are still pending (waiting for an attempt or a retry): the
    webhook backlog gauge. Uses the ``(status, next_attempt_at)`` index."""
    query = select(func.count()).select_from(deliveries).where(deliveries.c.status == _PENDING)
    return int((await conn.execute(query)).scalar_one())
