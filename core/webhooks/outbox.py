"""Events and their deliveries, written in the transaction that ends a task, so a crash
can never finish a video without its event (docs/architecture.md, "Webhooks")."""

from __future__ import annotations

import json

from sqlalchemy.ext.asyncio import AsyncConnection

from core.ids import new_id
from core.presenter import video_of
from core.repo import events, tasks, webhooks
from schemas.clock import utcnow
from schemas.status import EVENT_OF, DeliveryStatus, EventType


async def record(conn: AsyncConnection, task_id: str) -> list[str]:
    """Write the event for the task's (terminal) state; the ids of the deliveries to make.

    Raises ``LookupError`` for an unknown task and ``KeyError`` for one that is not
    terminal (both caller bugs).
    """
    task = await tasks.load(conn, task_id)
    if task is None:
        raise LookupError(f"no task {task_id}")
    kind = EVENT_OF[task.status]
    now = utcnow()
    event_id = new_id("evt")
    body = {
        "id": event_id,
        "object": "event",
        "created_at": int(now.timestamp()),
        "type": str(kind),
        "data": video_of(task).model_dump(mode="json"),
    }
    await events.insert_event(
        conn,
        {
            "id": event_id,
            "client_id": task.client_id,
            "type": str(kind),
            "task_id": task_id,
            "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
            "created_at": now,
        },
    )
    return await fan_out(conn, event_id, task.client_id, kind, task.webhook_url)


async def fan_out(
    conn: AsyncConnection,
    event_id: str,
    client_id: str,
    kind: EventType,
    webhook_url: str | None,
) -> list[str]:
    """One pending delivery per subscribed endpoint of the client, plus the per-request URL;
    their ids."""
    targets: list[tuple[str | None, str]] = [
        (s.id, s.url)
        for s in await webhooks.subscriptions(conn, client_id)
        if not s.enabled_events or kind in s.enabled_events
    ]
    if webhook_url:
        targets.append((None, webhook_url))
    now = utcnow()
    ids = [new_id("dlv") for _ in targets]
    await events.insert_deliveries(
        conn,
        [
            {
                "id": delivery_id,
                "event_id": event_id,
                "client_id": client_id,
                "endpoint_id": endpoint_id,
                "url": url,
                "status": str(DeliveryStatus.PENDING),
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for delivery_id, (endpoint_id, url) in zip(ids, targets, strict=True)
        ],
    )
    return ids


async def replay(conn: AsyncConnection, event: events.Event) -> list[str]:
    """Deliver an event again to the client's current endpoints and the task's URL."""
    url = await tasks.webhook_url_of(conn, event.task_id)
    return await fan_out(conn, event.id, event.client_id, event.type, url)
