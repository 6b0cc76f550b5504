"""The stored MP4 and thumbnail under the console session (the browser has no bearer
key): the MP4 with HTTP Range support, so the player can seek and start at once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import PurePosixPath

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from core.storage import ObjectNotFound, Storage
from schemas.problems import Code
from schemas.status import TaskStatus
from service.console import session
from service.console.videos import task_of
from service.context import ctx
from service.errors import ProblemError

_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")
# Bytes read from the store per step of a ranged answer.
RANGE_CHUNK = 256 * 1024
_IMAGE_TYPES = {".jpg": "image/jpeg", ".webp": "image/webp"}


async def thumbnail(request: Request) -> Response:
    await session.admin(request)
    row = await task_of(request)
    if not row.thumbnail_key:
        raise ProblemError(Code.NOT_FOUND, "This video has no thumbnail.")
    storage = ctx(request).storage
    try:
        stream = await storage.open_stream(row.thumbnail_key)
    except ObjectNotFound:
        raise ProblemError(Code.NOT_FOUND, "The stored thumbnail is missing.") from None
    kind = _IMAGE_TYPES.get(PurePosixPath(row.thumbnail_key).suffix, "application/octet-stream")
    return StreamingResponse(stream, media_type=kind)


async def video(request: Request) -> Response:
    """The MP4: 200 with all of it, or 206 with the one range a ``Range: bytes=a-b``
    header asks for (416 for a range past its end; several ranges get all of it)."""
    await session.admin(request)
    row = await task_of(request)
    if row.status != TaskStatus.COMPLETED or not row.video_key:
        raise ProblemError(Code.VIDEO_NOT_READY, f"The video is not ready ({row.status}).")
    storage = ctx(request).storage
    size = await storage.stat(row.video_key)
    if size is None:
        raise ProblemError(Code.NOT_FOUND, "The stored video is missing.")
    headers = {"Accept-Ranges": "bytes"}
    try:
        wanted = byte_range(request.headers.get("range"), size)
    except Unsatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if wanted is None:
        stream = await storage.open_stream(row.video_key)
        headers["Content-Length"] = str(size)
        return StreamingResponse(stream, media_type="video/mp4", headers=headers)
    start, end = wanted
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    chunks = _ranged(storage, row.video_key, start, end)
    return StreamingResponse(chunks, status_code=206, media_type="video/mp4", headers=headers)


class Unsatisfiable(ValueError):
    """A range wholly past the end of the file (answered 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte of the single range a ``Range`` header asks for, or None
    (no header, or one answered with the whole file); raises `Unsatisfiable`."""
    if header is None:
        return None
    found = _RANGE.fullmatch(header.strip())
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            raise Unsatisfiable(header)
        return max(0, size - length), size - 1
    start = int(first)
    if last and int(last) < start:  # an invalid range-spec: the header is ignored
        return None
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        raise Unsatisfiable(header)
    return start, end


async def _ranged(storage: Storage, key: str, start: int, end: int) -> AsyncIterator[bytes]:
    position = start
    while position <= end:
        data = await storage.read_range(key, position, min(RANGE_CHUNK, end - position + 1))
        if not data:
            return
        yield data
        position += len(data)
