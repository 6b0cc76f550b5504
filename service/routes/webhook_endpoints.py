"""/v1/webhook-endpoints and /v1/webhook-secret: where a client's events go, and the
secrets that sign them (shown only when created or rotated)."""

from __future__ import annotations

import typing
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.ids import new_id
from core.repo import webhooks
from core.repo.webhooks import Endpoint
from core.secrets import SecretBox
from core.webhooks.secrets import rotate_client_secret, rotate_endpoint_secret
from core.webhooks.signing import new_secret
from schemas.api import (
    EVENT_TYPES,
    EndpointCreate,
    EndpointDeleted,
    EndpointList,
    EndpointOut,
    EndpointPatch,
    EndpointPath,
    WebhookSecret,
)
from schemas.clock import utcnow
from schemas.problems import Code
from service import params
from service.auth import authenticate
from service.body import json_object, parse
from service.context import ctx
from service.contract import Operation, Reply
from service.errors import ProblemError
from service.webhook_targets import require_allowed

LIMIT = 64 * 1024
MAX_ENDPOINTS = 20


def _box(request: Request) -> SecretBox:
    return ctx(request).config.box


_KNOWN_EVENTS = set(typing.get_args(EVENT_TYPES))


def _out(row: Endpoint, secret: str | None = None) -> dict[str, Any]:
    """The endpoint as the API shows it, whatever an earlier version stored (a null list
    or description reads as empty)."""
    events = row.enabled_events if isinstance(row.enabled_events, list) else []
    return EndpointOut(
        id=row.id,
        url=row.url or "",
        enabled_events=[e for e in events if e in _KNOWN_EVENTS],
        description=row.description or "",
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        created_at=int(row.created_at.timestamp()),
        secret=secret,
    ).model_dump(mode="json", exclude={"secret"} if secret is None else None)


async def create(request: Request) -> Response:
    principal = await authenticate(request)
    body = parse(EndpointCreate, await json_object(request, LIMIT))
    await require_allowed(ctx(request).settings, body.url, "url")
    secret = new_secret()
    endpoint_id = new_id("whep")
    async with ctx(request).engine.begin() as conn:
        if len(await webhooks.endpoints(conn, principal.client_id)) >= MAX_ENDPOINTS:
            raise ProblemError(
                Code.VALIDATION_ERROR, f"At most {MAX_ENDPOINTS} endpoints per client."
            )
        now = utcnow()
        await webhooks.insert_endpoint(
            conn,
            {
                "id": endpoint_id,
                "client_id": principal.client_id,
                "url": body.url,
                "description": body.description,
                "enabled_events": list(body.enabled_events),
                "secret": _box(request).encrypt(secret),
                "enabled": True,
                "created_at": now,
                "updated_at": now,
            },
        )
        row = await webhooks.endpoint(conn, endpoint_id, client_id=principal.client_id)
    assert row is not None  # inserted in this transaction
    return JSONResponse(_out(row, secret), status_code=201)


async def list_endpoints(request: Request) -> Response:
    principal = await authenticate(request)
    async with ctx(request).engine.connect() as conn:
        rows = await webhooks.endpoints(conn, principal.client_id)
    return JSONResponse({"object": "list", "data": [_out(r) for r in rows]})


async def _own(request: Request, conn: AsyncConnection) -> Endpoint:
    principal = await authenticate(request)
    endpoint_id = params.path(EndpointPath, request, not_found="No such webhook endpoint.")
    row = await webhooks.endpoint(conn, endpoint_id.endpoint_id, client_id=principal.client_id)
    if row is None:
        raise ProblemError(Code.NOT_FOUND, "No such webhook endpoint.")
    return row


async def retrieve(request: Request) -> Response:
    async with ctx(request).engine.connect() as conn:
        return JSONResponse(_out(await _own(request, conn)))


async def patch(request: Request) -> Response:
    await authenticate(request)  # a 401 before any body is read
    body = parse(EndpointPatch, await json_object(request, LIMIT))
    changes = body.model_dump(exclude_unset=True)
    if "url" in changes:
        await require_allowed(ctx(request).settings, changes["url"], "url")
    if changes.get("enabled"):
        changes["disabled_reason"] = None
    async with ctx(request).engine.begin() as conn:
        row = await _own(request, conn)
        if changes:
            await webhooks.update_endpoint(conn, row.id, changes)
        row = await _own(request, conn)
    return JSONResponse(_out(row))


async def delete(request: Request) -> Response:
    async with ctx(request).engine.begin() as conn:
        row = await _own(request, conn)
        await webhooks.update_endpoint(conn, row.id, {"deleted_at": utcnow(), "enabled": False})
    return JSONResponse(EndpointDeleted(id=row.id).model_dump(mode="json"))


async def rotate(request: Request) -> Response:
    async with ctx(request).engine.begin() as conn:
        row = await _own(request, conn)
        secret = await rotate_endpoint_secret(conn, _box(request), row.id, row.secret)
        row = await _own(request, conn)
    return JSONResponse(_out(row, secret))


async def client_secret(request: Request) -> Response:
    """A new signing secret for per-request ``webhook_url`` deliveries (old one: 24 h)."""
    principal = await authenticate(request)
    async with ctx(request).engine.begin() as conn:
        secret = await rotate_client_secret(conn, _box(request), principal.client_id)
    return JSONResponse(WebhookSecret(secret=secret).model_dump(mode="json"), status_code=201)


_ONE = Reply(200, "The endpoint.", EndpointOut)
_ROTATED = "The endpoint, with its new signing secret (shown this once)."

operations = [
    Operation(
        "POST",
        "/v1/webhook-endpoints",
        create,
        "Register a webhook endpoint",
        "webhooks",
        (Reply(201, _ROTATED, EndpointOut, id_of="endpoint_id"),),
        body=EndpointCreate,
        problems=(Code.URL_NOT_ALLOWED,),
    ),
    Operation(
        "GET",
        "/v1/webhook-endpoints",
        list_endpoints,
        "The client's webhook endpoints",
        "webhooks",
        (Reply(200, "The endpoints.", EndpointList),),
    ),
    Operation(
        "GET",
        "/v1/webhook-endpoints/{endpoint_id}",
        retrieve,
        "One webhook endpoint",
        "webhooks",
        (_ONE,),
        path_params=EndpointPath,
    ),
    Operation(
        "PATCH",
        "/v1/webhook-endpoints/{endpoint_id}",
        patch,
        "Change an endpoint (fields left out keep their value; null is refused)",
        "webhooks",
        (_ONE,),
        path_params=EndpointPath,
        body=EndpointPatch,
        problems=(Code.URL_NOT_ALLOWED,),
    ),
    Operation(
        "DELETE",
        "/v1/webhook-endpoints/{endpoint_id}",
        delete,
        "Delete an endpoint",
        "webhooks",
        (Reply(200, "The endpoint is deleted.", EndpointDeleted),),
        path_params=EndpointPath,
    ),
    Operation(
        "POST",
        "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
        rotate,
        "Rotate an endpoint's signing secret (the old one verifies for 24 h more)",
        "webhooks",
        (Reply(200, _ROTATED, EndpointOut),),
        path_params=EndpointPath,
    ),
    Operation(
        "POST",
        "/v1/webhook-secret",
        client_secret,
        "(Re)issue the client's signing secret for per-request webhook_url deliveries",
        "webhooks",
        (Reply(201, "The new secret (shown this once).", WebhookSecret),),
    ),
]
