"""/v1/admin/config: the runtime configuration (upstream key write-only)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.secrets import mask
from schemas.config import ConfigOut, RuntimeConfig, RuntimeConfigPatch
from service.auth import require_admin
from service.body import json_object, parse
from service.context import ctx
from service.contract import Operation, Reply
from service.errors import from_validation


def _public(request: Request, config: RuntimeConfig) -> dict[str, Any]:
    body = config.model_dump(mode="json")
    key = ctx(request).config.upstream_key(config)
    body["upstream_api_key"] = mask(key)
    body["upstream_api_key_set"] = bool(key)
    return body


async def show(request: Request) -> Response:
    await require_admin(request)
    return JSONResponse(_public(request, await ctx(request).config.get()))


async def put(request: Request) -> Response:
    await require_admin(request)
    patch = parse(RuntimeConfigPatch, await json_object(request, 1024 * 1024))
    try:
        config = await ctx(request).config.update(patch)
    except ValidationError as exc:
        raise from_validation(exc) from None
    return JSONResponse(_public(request, config))


_CONFIG = Reply(200, "The runtime configuration (the upstream key masked).", ConfigOut)

operations = [
    Operation(
        "GET",
        "/v1/admin/config",
        show,
        "The runtime configuration",
        "admin",
        (_CONFIG,),
        auth="admin",
    ),
    Operation(
        "PUT",
        "/v1/admin/config",
        put,
        "Change the runtime configuration (any subset; checked as a whole before it is stored)",
        "admin",
        (_CONFIG,),
        auth="admin",
        body=RuntimeConfigPatch,
    ),
]
