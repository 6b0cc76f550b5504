"""/v1/events: what happened, where it was delivered, and replay."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import queue
from core.repo import events
from core.repo.events import Attempt, Delivery, Event
from core.webhooks import outbox
from schemas.api import EventDetail, EventList, EventListQuery, EventPath
from schemas.clock import unix
from schemas.problems import Code
from service import params
from service.auth import authenticate
from service.context import ctx
from service.contract import Operation, Reply
from service.errors import ProblemError


def _delivery(row: Delivery, attempts: list[Attempt]) -> dict[str, Any]:
    return {
        "id": row.id,
        "endpoint_id": row.endpoint_id,
        "url": row.url,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": unix(row.next_attempt_at),
        "delivered_at": unix(row.delivered_at),
        "last_status_code": row.last_status_code,
        "attempt_log": [
            {
                "at": unix(a.at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
            }
            for a in attempts
        ],
    }


async def list_events(request: Request) -> Response:
    principal = await authenticate(request)
    query = params.query(EventListQuery, request)
    limit = query.limit
    async with ctx(request).engine.connect() as conn:
        rows = await events.event_page(
            conn, client_id=principal.scope, limit=limit, after=query.after, kind=query.type
        )
    data = [json.loads(r.body) for r in rows[:limit]]
    return JSONResponse({"object": "list", "data": data, "has_more": len(rows) > limit})


async def _event(request: Request, conn: AsyncConnection) -> Event:
    principal = await authenticate(request)
    event_id = params.path(EventPath, request, not_found="No such event.").event_id
    row = await events.event(conn, event_id, client_id=principal.scope)
    if row is None:
        raise ProblemError(Code.NOT_FOUND, "No such event.")
    return row


async def _with_deliveries(conn: AsyncConnection, row: Event) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(row.body)
    body["deliveries"] = [_delivery(d, a) for d, a in await events.deliveries_of(conn, row.id)]
    return body


async def retrieve(request: Request) -> Response:
    async with ctx(request).engine.connect() as conn:
        return JSONResponse(await _with_deliveries(conn, await _event(request, conn)))


async def replay(request: Request) -> Response:
    """Deliver the event again to the client's current endpoints (same webhook-id)."""
    context = ctx(request)
    async with context.engine.begin() as conn:
        row = await _event(request, conn)
        ids = await outbox.replay(conn, row)
    await queue.enqueue_after_commit(context.queue, *queue.deliveries(ids))
    async with context.engine.connect() as conn:
        return JSONResponse(await _with_deliveries(conn, row), status_code=202)


operations = [
    Operation(
        "GET",
        "/v1/events",
        list_events,
        "Events, newest first",
        "events",
        (Reply(200, "A page of events.", EventList),),
        query=EventListQuery,
        problems=(Code.INVALID_CURSOR,),
    ),
    Operation(
        "GET",
        "/v1/events/{event_id}",
        retrieve,
        "One event with its deliveries and every attempt",
        "events",
        (Reply(200, "The event.", EventDetail),),
        path_params=EventPath,
    ),
    Operation(
        "POST",
        "/v1/events/{event_id}/replay",
        replay,
        "Deliver an event again (same webhook-id) to the current endpoints",
        "events",
        (Reply(202, "The event and its deliveries, the new ones pending.", EventDetail),),
        path_params=EventPath,
    ),
]
