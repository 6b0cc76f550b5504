"""Events and their deliveries, written in the transaction that ends a task, so a
crash can never finish a video without its event (DESIGN §8)."""

from __future__ import annotations

import json

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.ids import new_id
from core.tables import deliveries, events, tasks, webhook_endpoints
from schemas.presenter import video_of
from schemas.status import TaskStatus
from schemas.tables import utcnow

EVENT_OF = {
    TaskStatus.COMPLETED: "video.completed",
    TaskStatus.FAILED: "video.failed",
    TaskStatus.CANCELLED: "video.cancelled",
}


async def record(conn: AsyncConnection, task_id: str) -> list[str]:
    """Write the event for the task's (terminal) state; the ids of the deliveries to make."""
    row = (await conn.execute(select(tasks).where(tasks.c.id == task_id))).one()
    kind = EVENT_OF[TaskStatus(row.status)]
    now = utcnow()
    event_id = new_id("evt")
    body = {
        "id": event_id,
        "object": "event",
        "created_at": int(now.timestamp()),
        "type": kind,
        "data": video_of(row).model_dump(mode="json"),
    }
    await conn.execute(
        insert(events).values(
            id=event_id,
            client_id=row.client_id,
            type=kind,
            task_id=task_id,
            body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
            created_at=now,
        )
    )
    return await fan_out(conn, event_id, row.client_id, kind, row.webhook_url)


async def fan_out(
    conn: AsyncConnection, event_id: str, client_id: str, kind: str, webhook_url: str | None
) -> list[str]:
    """One pending delivery per subscribed endpoint of the client, plus the per-request URL."""
    targets: list[tuple[str | None, str]] = []
    endpoints = await conn.execute(
        select(webhook_endpoints.c.id, webhook_endpoints.c.url, webhook_endpoints.c.enabled_events)
        .where(
            webhook_endpoints.c.client_id == client_id,
            webhook_endpoints.c.enabled.is_(True),
            webhook_endpoints.c.deleted_at.is_(None),
        )
        .order_by(webhook_endpoints.c.id)
    )
    for endpoint in endpoints:
        if not endpoint.enabled_events or kind in endpoint.enabled_events:
            targets.append((endpoint.id, endpoint.url))
    if webhook_url:
        targets.append((None, webhook_url))
    now = utcnow()
    ids = [new_id("dlv") for _ in targets]
    if targets:
        await conn.execute(
            insert(deliveries),
            [
                {
                    "id": delivery_id,
                    "event_id": event_id,
                    "client_id": client_id,
                    "endpoint_id": endpoint_id,
                    "url": url,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for delivery_id, (endpoint_id, url) in zip(ids, targets, strict=True)
            ],
        )
    return ids


async def webhook_url_of(conn: AsyncConnection, task_id: str) -> str | None:
    query = select(tasks.c.webhook_url).where(tasks.c.id == task_id)
    url: str | None = (await conn.execute(query)).scalar_one_or_none()
    return url
