"""/v1/videos: create, read, list, cancel, delete, content."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from core import queue, settlement
from core.presenter import video_of
from core.repo import tasks
from core.repo.tasks import Task
from core.storage import ObjectNotFound
from schemas.api import (
    ContentQuery,
    Video,
    VideoCreate,
    VideoDeleted,
    VideoList,
    VideoListQuery,
    VideoPath,
)
from schemas.clock import utcnow
from schemas.problems import Code
from schemas.status import TERMINAL, TaskStatus, internal_statuses
from service import creation, idempotency, params
from service.auth import UncountedRequest, authenticate, count_uncounted
from service.body import image_from_upload, json_object, limited, loads, media_type, parse
from service.context import Context, ctx
from service.contract import Operation, Reply
from service.creation import InputImage
from service.errors import ProblemError
from service.request_id import request_id_of

# Repeated form fields that are lists in JSON, by their name in JSON.
_FORM_LISTS = {
    "images": "images",
    "images[]": "images",
    "image_roles": "image_roles",
    "image_roles[]": "image_roles",
}
_METADATA_FIELD = re.compile(r"metadata\[([^\[\]]{1,64})\]")
# The JSON input_reference object ({file_id} or {image_url}) as form fields.
_REFERENCE_FIELD = re.compile(r"input_reference\[(file_id|image_url)\]")


async def create(request: Request) -> Response:
    # The client's request is counted with the user's create, in one Redis round trip;
    # on every other way out (a problem, a replay) on its own, a 429 taking precedence.
    principal = await authenticate(request, defer=True)
    uncounted: UncountedRequest | None = getattr(request.state, "uncounted", None)
    context = ctx(request)
    try:
        limit = context.settings.max_body_bytes
        uploads: list[InputImage] = []
        if media_type(request) == "multipart/form-data":
            data, uploads = await _form(request, limit)
        else:
            data = await json_object(request, limit)
        req = parse(VideoCreate, data)
        key = request.headers.get("idempotency-key")
        status, body = await creation.create_video(
            context,
            principal,
            req,
            uploads,
            idempotency.check_key(key) if key is not None else None,
            request_id_of(request),
            uncounted,
        )
    except Exception:
        await count_uncounted(context, uncounted)
        raise
    await count_uncounted(context, uncounted)
    return JSONResponse(body, status_code=status)


async def _form(request: Request, limit: int) -> tuple[dict[str, Any], list[InputImage]]:
    """The multipart fields as the JSON body would carry them, and the uploaded images;
    the body is bounded while it streams (with or without a Content-Length)."""
    try:
        async with limited(request, limit).form(
            max_files=4, max_fields=64, max_part_size=limit
        ) as form:
            return await _fields(form.multi_items())
    except (ValueError, KeyError, MultiPartException) as exc:
        raise ProblemError(Code.VALIDATION_ERROR, f"Malformed multipart body: {exc}") from None
    except HTTPException as exc:  # Starlette's wording of a MultiPartException
        raise ProblemError(
            Code.VALIDATION_ERROR, f"Malformed multipart body: {exc.detail}"
        ) from None


async def _fields(
    items: list[tuple[str, str | UploadFile]],
) -> tuple[dict[str, Any], list[InputImage]]:
    data: dict[str, Any] = {}
    uploads: list[InputImage] = []
    for name, value in items:
        if isinstance(value, UploadFile):
            if name != "input_reference":
                raise ProblemError(Code.VALIDATION_ERROR, f"Unexpected file field '{name}'.")
            mime, raw = await image_from_upload(value)
            uploads.append(InputImage(mime, raw))
        elif name in _FORM_LISTS:
            data.setdefault(_FORM_LISTS[name], []).append(value)
        elif (reference := _REFERENCE_FIELD.fullmatch(name)) is not None:
            fields = data.setdefault("input_reference", {})
            if not isinstance(fields, dict):
                raise ProblemError(Code.VALIDATION_ERROR, "input_reference is given twice.")
            fields[reference.group(1)] = value
        elif (nested := _METADATA_FIELD.fullmatch(name)) is not None:
            # The openai SDK sends extra_body={"metadata": {k: v}} as metadata[k] fields.
            metadata = data.setdefault("metadata", {})
            if not isinstance(metadata, dict):
                raise ProblemError(Code.INVALID_METADATA, "metadata must be an object.")
            metadata[nested.group(1)] = value
        else:
            data[name] = _form_value(name, value)
    return data, uploads


def _form_value(name: str, value: str) -> Any:
    """A text field as its JSON counterpart: ``metadata`` parsed, ``enhance_prompt`` true
    or false, ``seed`` an integer when it is ASCII digits (anything else stays text, which
    the model refuses)."""
    if name == "metadata":
        try:
            metadata = loads(value, what="metadata")
        except ProblemError as exc:
            raise ProblemError(Code.INVALID_METADATA, exc.detail) from None
        if not isinstance(metadata, dict):
            raise ProblemError(Code.INVALID_METADATA, "metadata must be a JSON object.")
        return metadata
    if name == "enhance_prompt":
        return {"true": True, "false": False}.get(value.lower(), value)
    if name == "seed" and (seed := params.ascii_int(value)) is not None:
        return seed
    return value


async def _owned(context: Context, request: Request) -> Task:
    principal = await authenticate(request)
    video_id = params.path(VideoPath, request, not_found="No such video.").video_id
    async with context.engine.connect() as conn:
        row = await tasks.visible(conn, video_id, client_id=principal.scope)
    if row is None:
        raise ProblemError(Code.NOT_FOUND, "No such video.")
    return row


async def retrieve(request: Request) -> Response:
    context = ctx(request)
    row = await _owned(context, request)
    admin = (await authenticate(request)).is_admin
    return JSONResponse(_shown(await _present(context, row), row, admin))


def _shown(video: Video, row: Task, admin: bool) -> dict[str, Any]:
    """The video as JSON; the route it ran on only for admins (which provider serves a
    model is the operator's business)."""
    body = video.model_dump(mode="json")
    if admin:
        body["upstream_route"] = row.upstream_route
    return body


async def _present(context: Context, row: Task) -> Video:
    if row.status != TaskStatus.COMPLETED or not row.video_key:
        return video_of(row)
    seconds = context.settings.presign_seconds
    presigned = await context.storage.presigned_url(row.video_key, seconds)
    if presigned is not None:
        return video_of(row, download_url=presigned, expires_at=int(time.time()) + seconds)
    base = str(context.settings.public_url or "").rstrip("/")
    return video_of(row, download_url=f"{base}/v1/videos/{row.id}/content")


async def list_videos(request: Request) -> Response:
    principal = await authenticate(request)
    context = ctx(request)
    query = params.query(VideoListQuery, request)
    limit = query.limit
    statuses = internal_statuses(query.status) if query.status is not None else None
    async with context.engine.connect() as conn:
        rows = await tasks.page(
            conn,
            client_id=principal.scope,
            limit=limit,
            descending=query.order == "desc",
            after=query.after,
            user=query.user,
            statuses=statuses,
        )
    page = [await _present(context, r) for r in rows[:limit]]
    body = VideoList(
        data=page,
        first_id=page[0].id if page else None,
        last_id=page[-1].id if page else None,
        has_more=len(rows) > limit,
    ).model_dump(mode="json")
    body["data"] = [
        _shown(video, row, principal.is_admin) for video, row in zip(page, rows, strict=False)
    ]
    return JSONResponse(body)


async def cancel(request: Request) -> Response:
    context = ctx(request)
    row = await _owned(context, request)
    await cancel_video(context, row)
    return await retrieve(request)


async def cancel_video(context: Context, row: Task) -> None:
    """Cancel ``row``'s task, releasing its hold, and enqueue its webhook deliveries (the
    API's cancel and the console's); a 409 ``video_finished`` problem if it had ended."""
    async with context.engine.begin() as conn:
        cancelled = await settlement.cancel(conn, row.id)
    if cancelled is None:
        raise ProblemError(Code.VIDEO_FINISHED, f"The video has already finished ({row.status}).")
    await queue.enqueue_after_commit(context.queue, *queue.deliveries(cancelled.deliveries))


async def delete(request: Request) -> Response:
    """Cancel if unfinished, hide the row and mark its objects ``deleting`` in one
    transaction; the purge job removes them (retried until the store lets it), so the
    answer does not depend on the store."""
    context = ctx(request)
    row = await _owned(context, request)
    cancelled = None
    purge_due = utcnow() + timedelta(seconds=context.settings.reconcile_grace_seconds)
    async with context.engine.begin() as conn:
        if row.status not in TERMINAL:
            cancelled = await settlement.cancel(conn, row.id)
        marked = await tasks.mark_deleted(conn, row.id, purge_due)
    jobs = queue.deliveries(cancelled.deliveries) if cancelled is not None else []
    if marked:
        jobs.append(queue.purge_video(row.id))
    await queue.enqueue_after_commit(context.queue, *jobs)
    return JSONResponse(VideoDeleted(id=row.id).model_dump(mode="json"))


_MEDIA_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".webp": "image/webp"}


async def content(request: Request) -> Response:
    """The stored MP4, or with ``?variant=thumbnail|spritesheet`` an image derived from it:
    a 302 to a presigned URL where the storage has them (``?redirect=0`` streams instead)."""
    context = ctx(request)
    row = await _owned(context, request)
    query = params.query(ContentQuery, request)
    variant = query.variant
    if row.status != TaskStatus.COMPLETED or not row.video_key:
        raise ProblemError(Code.VIDEO_NOT_READY, f"The video is not ready ({row.status}).")
    key = {"video": row.video_key, "thumbnail": row.thumbnail_key}.get(variant, row.spritesheet_key)
    if key is None:
        raise ProblemError(Code.NOT_FOUND, f"This video has no {variant}.")
    url = await context.storage.presigned_url(key, context.settings.presign_seconds)
    if url is not None and query.redirect != "0":
        return RedirectResponse(url, status_code=302)
    try:
        stream = await context.storage.open_stream(key)
    except ObjectNotFound:
        raise ProblemError(Code.NOT_FOUND, f"The stored {variant} is missing.") from None
    headers = (
        {"Content-Length": str(row.video_size)} if variant == "video" and row.video_size else {}
    )
    media_type = _MEDIA_TYPES.get(PurePosixPath(key).suffix, "application/octet-stream")
    return StreamingResponse(stream, media_type=media_type, headers=headers)


_VIDEO = Reply(200, "The video object.", Video)
_NOT_FOUND = (Code.NOT_FOUND,)

operations = [
    Operation(
        "POST",
        "/v1/videos",
        create,
        "Create a video (JSON, or multipart/form-data with input_reference files)",
        "videos",
        (Reply(200, "The video object.", Video, id_of="video_id"),),
        body=VideoCreate,
        multipart=True,
        idempotency_key=True,
        problems=(
            Code.INVALID_PROMPT,
            Code.UNKNOWN_MODEL,
            Code.IMAGES_NOT_SUPPORTED,
            Code.TOO_MANY_IMAGES,
            Code.UNSUPPORTED_PARAMETER,
            Code.INVALID_IMAGE,
            Code.IMAGE_TOO_LARGE,
            Code.INVALID_METADATA,
            Code.URL_NOT_ALLOWED,
            Code.INVALID_IDEMPOTENCY_KEY,
            Code.IDEMPOTENCY_KEY_REUSED,
            Code.IDEMPOTENCY_IN_PROGRESS,
            Code.NOT_FOUND,  # a replay whose video has been deleted
            Code.UPLOAD_NOT_FOUND,
            Code.INSUFFICIENT_CREDITS,
            Code.TOO_MANY_CONCURRENT_TASKS,
            Code.SERVICE_DISABLED,
        ),
    ),
    Operation(
        "GET",
        "/v1/videos",
        list_videos,
        "List videos, newest first",
        "videos",
        (Reply(200, "A page of videos.", VideoList),),
        query=VideoListQuery,
        problems=(Code.INVALID_CURSOR,),
    ),
    Operation(
        "GET",
        "/v1/videos/{video_id}",
        retrieve,
        "Retrieve a video",
        "videos",
        (_VIDEO,),
        path_params=VideoPath,
    ),
    Operation(
        "DELETE",
        "/v1/videos/{video_id}",
        delete,
        "Delete a video (cancelling it first if unfinished) and its stored files",
        "videos",
        (Reply(200, "The video is deleted.", VideoDeleted),),
        path_params=VideoPath,
    ),
    Operation(
        "POST",
        "/v1/videos/{video_id}/cancel",
        cancel,
        "Cancel an unfinished video and release its credits",
        "videos",
        (_VIDEO,),
        path_params=VideoPath,
        problems=(Code.VIDEO_FINISHED,),
    ),
    Operation(
        "GET",
        "/v1/videos/{video_id}/content",
        content,
        "Download the video (or its thumbnail or spritesheet)",
        "videos",
        (
            Reply(200, "The file.", None, ("video/mp4", "image/jpeg", "image/webp")),
            Reply(302, "Redirect to a presigned URL.", None, (), {"Location": "The URL."}),
        ),
        path_params=VideoPath,
        query=ContentQuery,
        problems=(Code.VIDEO_NOT_READY,),
    ),
]
