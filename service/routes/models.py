"""/v1/models: the catalogue from the runtime config."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from schemas.api import ModelInfo, ModelList
from service.auth import authenticate
from service.context import ctx
from service.contract import Operation, Reply


async def list_models(request: Request) -> Response:
    await authenticate(request)
    config = await ctx(request).config.get()
    body = ModelList(data=[ModelInfo.of(spec) for spec in config.models])
    return JSONResponse(body.model_dump(mode="json"))


operations = [
    Operation(
        "GET",
        "/v1/models",
        list_models,
        "The model catalogue: modes, images and their roles, sizes, lengths, price",
        "models",
        (Reply(200, "The models.", ModelList),),
    )
]
