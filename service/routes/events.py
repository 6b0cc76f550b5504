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
from schemas.api import EventDetail, EventDetailQuery, EventList, EventListQuery, EventPath
from schemas.clock import unix
from schemas.problems import Code
from service import params, ratelimit
from service.auth import authenticate
from service.context import Context, ctx
from service.contract import Operation, Reply
from service.errors import ProblemError
from service.ratelimit import rate_limited


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


async def _with_deliveries(
    conn: AsyncConnection,
    row: Event,
    *,
    limit: int,
    after: str | None = None,
    only: list[str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(row.body)
    found = await events.deliveries_of(conn, row.id, limit=limit, after=after, only=only)
    body["deliveries"] = [_delivery(d, a) for d, a in found[:limit]]
    body["deliveries_has_more"] = len(found) > limit
    return body


async def retrieve(request: Request) -> Response:
    async with ctx(request).engine.connect() as conn:
        row = await _event(request, conn)
        query = params.query(EventDetailQuery, request)
        body = await _with_deliveries(conn, row, limit=query.limit, after=query.after)
    return JSONResponse(body)


async def replay(request: Request) -> Response:
    """Deliver the event again to the client's current endpoints (same webhook-id); the
    answer shows the deliveries this replay made. Limited per event and per client."""
    context = ctx(request)
    async with context.engine.connect() as conn:
        row = await _event(request, conn)
    principal = await authenticate(request)
    ids = await replay_event(context, row, principal.client_id)
    async with context.engine.connect() as conn:
        body = await _with_deliveries(conn, row, limit=max(1, len(ids)), only=ids)
    return JSONResponse(body, status_code=202)


async def replay_event(context: Context, row: Event, replayer: str) -> list[str]:
    """Deliver ``row`` again to its client's current endpoints (the API's replay and the
    console's): the ids of the deliveries made, enqueued. Each replay fans out to every
    endpoint with the whole retry schedule: a 429 problem past
    ``replays_per_event_per_hour`` for the event or ``replays_per_client_per_minute`` for
    the ``replayer`` (the client id of the key asking)."""
    config = await context.config.get()
    rule = ratelimit.event_replays(config)
    wait = await context.limits.hit(rule, row.id)
    if wait is not None:
        raise rate_limited(wait, f"This event was replayed {rule.amount} times in the last hour.")
    rule = ratelimit.client_replays(config)
    wait = await context.limits.hit(rule, replayer)
    if wait is not None:
        raise rate_limited(wait, f"This client replayed {rule.amount} events in the last minute.")
    async with context.engine.begin() as conn:
        ids = await outbox.replay(conn, row)
    await queue.enqueue_after_commit(context.queue, *queue.deliveries(ids))
    return ids


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
        "One event with a page of its deliveries (oldest first) and their attempts",
        "events",
        (Reply(200, "The event.", EventDetail),),
        path_params=EventPath,
        query=EventDetailQuery,
    ),
    Operation(
        "POST",
        "/v1/events/{event_id}/replay",
        replay,
        "Deliver an event again (same webhook-id) to the current endpoints",
        "events",
        (Reply(202, "The event and the deliveries this replay made (pending).", EventDetail),),
        path_params=EventPath,
    ),
]
