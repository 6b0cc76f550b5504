"""/v1/models: the catalogue from the runtime config."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from schemas.api import ModelInfo
from service.auth import authenticate
from service.context import ctx


async def list_models(request: Request) -> Response:
    await authenticate(request)
    config = await ctx(request).config.get()
    data = [ModelInfo.of(spec).model_dump(mode="json") for spec in config.models]
    return JSONResponse({"object": "list", "data": data})


routes = [Route("/v1/models", list_models, methods=["GET"])]
