"""/v1/admin/keys: create (the secret shown once), list and revoke API keys, with the
rules of ``google-video keys`` (core.apikeys: reserved client ids, admin keys act for
``admin``, a key without a client makes a new one)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import apikeys
from core.presenter import api_key_of
from schemas.api import (
    ApiKeyList,
    ApiKeyOut,
    KeyCreate,
    KeyListQuery,
    KeyPath,
    KeyRevoked,
)
from schemas.problems import Code
from schemas.status import Role
from service import params
from service.auth import require_admin
from service.body import json_object, parse
from service.context import ctx
from service.contract import Operation, Reply
from service.errors import ProblemError


async def create(request: Request) -> Response:
    await require_admin(request)
    body = parse(KeyCreate, await json_object(request, 16 * 1024))
    async with ctx(request).engine.begin() as conn:
        try:
            key_id, key = await apikeys.issue_key(
                conn, name=body.name, role=Role(body.role), client=body.client
            )
        except apikeys.ClientExists as exc:
            raise ProblemError(
                Code.VALIDATION_ERROR,
                f"The client {exc.client_id!r} already exists; send"
                f' {{"client": {json.dumps(exc.client_id)}}} to add a key to it.',
            ) from None
        except apikeys.ClientRefused as exc:
            raise ProblemError(Code.VALIDATION_ERROR, f"Refused: {exc}.") from None
        row = await apikeys.find(conn, key_id)
    assert row is not None  # inserted in this transaction
    return JSONResponse(api_key_of(row, key).model_dump(mode="json"), status_code=201)


async def list_keys(request: Request) -> Response:
    await require_admin(request)
    query = params.query(KeyListQuery, request)
    async with ctx(request).engine.connect() as conn:
        rows = await apikeys.list_keys(conn, include_revoked=query.include_revoked == "true")
    body = ApiKeyList(data=[api_key_of(r) for r in rows])
    return JSONResponse(body.model_dump(mode="json", exclude={"data": {"__all__": {"key"}}}))


async def revoke(request: Request) -> Response:
    await require_admin(request)
    key_id = params.path(KeyPath, request, not_found="No such active key.").key_id
    context = ctx(request)
    async with context.engine.begin() as conn:
        revoked = await apikeys.revoke(conn, key_id)
    if not revoked:
        raise ProblemError(Code.NOT_FOUND, "No such active key.")
    context.keys.forget(key_id)
    return JSONResponse(KeyRevoked(id=key_id).model_dump(mode="json"))


operations = [
    Operation(
        "POST",
        "/v1/admin/keys",
        create,
        "Create an API key; the answer is the only place its secret is ever shown",
        "admin",
        (Reply(201, "The key, with its secret (`key`).", ApiKeyOut, id_of="key_id"),),
        auth="admin",
        body=KeyCreate,
    ),
    Operation(
        "GET",
        "/v1/admin/keys",
        list_keys,
        "Every API key, oldest first (never its secret)",
        "admin",
        (Reply(200, "The keys.", ApiKeyList),),
        auth="admin",
        query=KeyListQuery,
    ),
    Operation(
        "DELETE",
        "/v1/admin/keys/{key_id}",
        revoke,
        "Revoke an API key (refused by this replica at once, by others within"
        " API_KEY_CACHE_SECONDS)",
        "admin",
        (Reply(200, "The key is revoked.", KeyRevoked),),
        auth="admin",
        path_params=KeyPath,
    ),
]
