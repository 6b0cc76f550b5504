"""Reading request bodies safely: size limit, content type, JSON or multipart."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request

from core.images import MAX_IMAGE_BYTES, sniff_image
from schemas.problems import Code
from service.errors import ProblemError, from_validation

M = TypeVar("M", bound=BaseModel)


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProblemError(Code.BODY_TOO_LARGE, f"Request body exceeds {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProblemError(Code.BODY_TOO_LARGE, f"Request body exceeds {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def json_object(request: Request, limit: int) -> dict[str, Any]:
    if media_type(request) != "application/json":
        raise ProblemError(
            Code.UNSUPPORTED_MEDIA_TYPE,
            "Send application/json (or multipart/form-data where the endpoint accepts files).",
        )
    raw = await read_limited(request, limit)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProblemError(Code.INVALID_JSON, f"Body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProblemError(Code.INVALID_JSON, "Body must be a JSON object.")
    return data


def parse(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc) from None


async def image_from_upload(upload: UploadFile) -> tuple[str, bytes]:
    data = await upload.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise ProblemError(Code.IMAGE_TOO_LARGE, "input_reference is larger than 10 MB.")
    mime = sniff_image(data)
    if mime is None:
        raise ProblemError(Code.INVALID_IMAGE, "input_reference is not a PNG, JPEG or WebP image.")
    return mime, data
