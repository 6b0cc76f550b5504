"""/v1/events: what happened, where it was delivered, and replay."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core import outbox
from schemas.problems import Code
from schemas.webhooks import EVENT_TYPES
from service import webhook_queries as queries
from service.auth import authenticate
from service.context import ctx
from service.creation import dispatch
from service.errors import ProblemError


def _unix(value: Any) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _delivery(row: Any, attempts: list[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "endpoint_id": row.endpoint_id,
        "url": row.url,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": _unix(row.next_attempt_at),
        "delivered_at": _unix(row.delivered_at),
        "last_status_code": row.last_status_code,
        "attempt_log": [
            {
                "at": _unix(a.at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
            }
            for a in attempts
        ],
    }


async def list_events(request: Request) -> Response:
    principal = await authenticate(request)
    params = request.query_params
    limit_raw, kind, after = params.get("limit", "20"), params.get("type"), params.get("after")
    if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= 100:
        raise ProblemError(Code.VALIDATION_ERROR, "limit must be an integer from 1 to 100.")
    if kind is not None and kind not in EVENT_TYPES:
        raise ProblemError(Code.VALIDATION_ERROR, f"type must be one of {', '.join(EVENT_TYPES)}.")
    if after is not None and not after.startswith("evt_"):
        raise ProblemError(Code.INVALID_CURSOR, "after must be an event id.")
    limit = int(limit_raw)
    async with ctx(request).engine.connect() as conn:
        rows = await queries.event_page(conn, principal, limit=limit, after=after, kind=kind)
    data = [json.loads(r.body) for r in rows[:limit]]
    return JSONResponse({"object": "list", "data": data, "has_more": len(rows) > limit})


async def _event(request: Request, conn: Any) -> Any:
    principal = await authenticate(request)
    row = await queries.event(conn, principal, request.path_params["event_id"])
    if row is None:
        raise ProblemError(Code.NOT_FOUND, "No such event.")
    return row


async def _with_deliveries(conn: Any, row: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(row.body)
    body["deliveries"] = [_delivery(d, a) for d, a in await queries.deliveries_of(conn, row.id)]
    return body


async def retrieve(request: Request) -> Response:
    async with ctx(request).engine.connect() as conn:
        return JSONResponse(await _with_deliveries(conn, await _event(request, conn)))


async def replay(request: Request) -> Response:
    """Deliver the event again to the client's current endpoints (same webhook-id)."""
    context = ctx(request)
    async with context.engine.begin() as conn:
        row = await _event(request, conn)
        url = await outbox.webhook_url_of(conn, row.task_id)
        ids = await outbox.fan_out(conn, row.id, row.client_id, row.type, url)
    await dispatch(context, ids)
    async with context.engine.connect() as conn:
        return JSONResponse(await _with_deliveries(conn, row), status_code=202)


routes = [
    Route("/v1/events", list_events, methods=["GET"]),
    Route("/v1/events/{event_id}", retrieve, methods=["GET"]),
    Route("/v1/events/{event_id}/replay", replay, methods=["POST"]),
]
