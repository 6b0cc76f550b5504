"""Reading request bodies safely: size limit (declared or chunked), content type, JSON of
bounded values and depth, multipart with a bounded stream."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import Message

from core.images import MAX_IMAGE_BYTES, sniff_image
from schemas.problems import Code
from service.errors import ProblemError, from_validation
from service.params import ascii_int

M = TypeVar("M", bound=BaseModel)

# Our deepest contract (a config's catalogue entry's list) is 4 levels; anything much
# deeper is hostile and would make recursive code further on (pydantic, json.dumps,
# loggers) exhaust the interpreter's stack. orjson itself stops at 1024.
MAX_JSON_DEPTH = 32
# What parsing costs is the number of values, not bytes: orjson reads a 20 MB string in
# tens of milliseconds but 1.2 M object keys in seconds, and holds the GIL all along (a
# thread would not free the event loop). Every value but the first follows a ',' or opens
# a '[' or '{', so counting those bytes as the body streams bounds the values before
# anything is parsed. No body of ours comes near: a create holds at most ~20 k such bytes
# even if its prompt and metadata were made of them, a 200-model config a few thousand.
MAX_JSON_VALUES = 50_000


def too_large(limit: int) -> ProblemError:
    return ProblemError(Code.BODY_TOO_LARGE, f"Request body exceeds {limit} bytes.")


def declared_length(request: Request, limit: int) -> None:
    """Refuse at once a body whose ``Content-Length`` says it is over ``limit``."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    size = ascii_int(declared.strip())
    if size is None:
        raise ProblemError(Code.VALIDATION_ERROR, "Content-Length must be a number of bytes.")
    if size > limit:
        raise too_large(limit)


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes (413 problem beyond, with or without a
    ``Content-Length``)."""
    declared_length(request, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def limited(request: Request, limit: int) -> Request:
    """``request`` whose body stream stops with a 413 problem past ``limit`` bytes, for
    parsers that read the stream themselves (multipart): a chunked body is bounded as it
    arrives, never buffered first."""
    declared_length(request, limit)
    seen = 0
    receive = request.receive

    async def bounded() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(limit)
        return message

    return Request(request.scope, bounded)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def loads(raw: bytes | str, *, what: str = "Body") -> Any:
    """``raw`` as a JSON value of at most ``MAX_JSON_VALUES`` values (a 413
    ``body_too_large`` problem beyond, before parsing) nested at most ``MAX_JSON_DEPTH``
    deep; an ``invalid_json`` problem otherwise (also for invalid UTF-8, lone
    surrogates, NaN and numbers beyond a double)."""
    containers = _count(raw, "[{")
    if containers + _count(raw, ",") > MAX_JSON_VALUES:
        raise too_many_values(what)
    return _parse(raw, containers, what)


def _parse(raw: bytes | str, containers: int, what: str) -> Any:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProblemError(Code.INVALID_JSON, f"{what} is not valid JSON: {exc}") from None
    if containers > MAX_JSON_DEPTH and not within_depth(value, MAX_JSON_DEPTH):
        raise ProblemError(
            Code.INVALID_JSON, f"{what} is nested deeper than {MAX_JSON_DEPTH} levels."
        )
    return value


def _count(raw: bytes | str, chars: str) -> int:
    """How many of ``chars`` ``raw`` holds (anywhere, strings included: an upper bound)."""
    if isinstance(raw, str):
        return sum(raw.count(c) for c in chars)
    return sum(raw.count(c.encode()) for c in chars)


def too_many_values(what: str = "Body") -> ProblemError:
    return ProblemError(
        Code.BODY_TOO_LARGE, f"{what} holds more than {MAX_JSON_VALUES} JSON values."
    )


def within_depth(value: Any, limit: int) -> bool:
    """Whether no array or object in ``value`` is nested deeper than ``limit`` (iterative:
    the check itself cannot exhaust the stack)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


async def json_object(request: Request, limit: int) -> dict[str, Any]:
    if media_type(request) != "application/json":
        raise ProblemError(
            Code.UNSUPPORTED_MEDIA_TYPE,
            "Send application/json (or multipart/form-data where the endpoint accepts files).",
        )
    declared_length(request, limit)
    chunks: list[bytes] = []
    size = values = containers = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        containers += _count(chunk, "[{")
        values += _count(chunk, ",")
        if containers + values > MAX_JSON_VALUES:
            raise too_many_values()  # refused as it streams, before any parsing
        chunks.append(chunk)
    data = _parse(b"".join(chunks), containers, "Body")
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
