"""The videos pages: the filtered list, one video (player, request, media facts,
timeline), and its cancel and replay buttons."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.apikeys import ADMIN_CLIENT
from core.repo import events, tasks
from core.repo.tasks import Task, TaskFilter
from core.repo.timeline import TimelineEntry, timeline
from schemas.api import Limit, VideoId, VideoPath
from schemas.catalogue import MODEL_ID_PATTERN
from schemas.fields import ClientName, UserName
from schemas.problems import Code
from schemas.providers import KIND_PATTERN
from schemas.status import TERMINAL, TaskStatus
from service import params
from service.console import render, session
from service.console.forms import posted
from service.console.security import csp, origin_of
from service.context import Context, ctx
from service.errors import ProblemError, from_validation
from service.routes.events import replay_event
from service.routes.videos import cancel_video

PAGE_SIZE = 25


class ListQuery(BaseModel):
    """The list's filters, as the filter form sends them (an empty field: no filter);
    times are UTC (a ``datetime-local`` input's value)."""

    model_config = ConfigDict(extra="ignore")

    client: ClientName | None = None
    user: UserName | None = None
    status: TaskStatus | None = None
    model: Annotated[str, Field(max_length=100, pattern=MODEL_ID_PATTERN)] | None = None
    provider: Annotated[str, Field(pattern=KIND_PATTERN)] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    before: VideoId | None = None
    limit: Limit = PAGE_SIZE


def _query(request: Request) -> ListQuery:
    given = {k: v for k, v in request.query_params.items() if v != ""}
    try:
        return ListQuery.model_validate(given)
    except ValidationError as exc:
        raise from_validation(exc) from None


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _local(moment: datetime | None) -> str:
    """A time as a ``datetime-local`` input shows it (UTC); one whose offset takes it past
    the calendar's ends shows that end, as the search reads it (``tasks.search``)."""
    if moment is None:
        return ""
    try:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    except OverflowError:
        return "9999-12-31T23:59" if moment.year == datetime.max.year else "0001-01-01T00:00"


async def list_page(request: Request) -> Response:
    await session.admin(request)
    context = ctx(request)
    query = _query(request)
    config = await context.config.get()
    filters = TaskFilter(
        client_id=query.client,
        user=query.user,
        status=query.status,
        model=query.model,
        provider=query.provider,
        created_from=_utc(query.created_from),
        created_to=_utc(query.created_to),
        model_providers=tasks.model_providers(config.models, config.upstream_kind),
    )
    async with context.engine.connect() as conn:
        rows = await tasks.search(conn, filters, before=query.before, limit=query.limit + 1)
    shown = rows[: query.limit]
    older = None
    if len(rows) > query.limit:
        kept = {k: v for k, v in request.query_params.items() if v != "" and k != "before"}
        older = "/console/videos?" + urlencode({**kept, "before": shown[-1].id})
    return render.page(
        request,
        "videos.html",
        rows=shown,
        query=query,
        statuses=[str(s) for s in TaskStatus],
        created_from=_local(_utc(query.created_from)),
        created_to=_local(_utc(query.created_to)),
        older=older,
    )


async def task_of(request: Request) -> Task:
    """The path's video (any client's: the console is the admin's); 404 page otherwise."""
    video_id = params.path(VideoPath, request, not_found="No such video.").video_id
    async with ctx(request).engine.connect() as conn:
        row = await tasks.visible(conn, video_id, client_id=None)
    if row is None:
        raise ProblemError(Code.NOT_FOUND, "No such video.")
    return row


async def media_url(context: Context, row: Task) -> str | None:
    """Where the player loads the MP4: a presigned URL of the store where it makes them,
    else the console's own streaming route; None until the video is stored."""
    if row.status != TaskStatus.COMPLETED or not row.video_key:
        return None
    presigned = await context.storage.presigned_url(row.video_key, context.settings.presign_seconds)
    return presigned or f"/console/videos/{row.id}/media"


def _last_event(entries: list[TimelineEntry]) -> str | None:
    for entry in reversed(entries):
        event_id = entry.detail.get("event_id") if entry.source == "event" else None
        if isinstance(event_id, str):
            return event_id
    return None


async def video_page(request: Request) -> Response:
    await session.admin(request)
    context = ctx(request)
    row = await task_of(request)
    async with context.engine.connect() as conn:
        entries = await timeline(conn, row.id)
    url = await media_url(context, row)
    response = render.page(
        request,
        "video.html",
        v=row,
        media_url=url,
        timeline=entries,
        event_id=_last_event(entries),
        cancellable=row.status not in TERMINAL,
        request_json=json.dumps(_request_of(row), indent=2, ensure_ascii=False, default=str),
        notice=_NOTICES.get(request.query_params.get("done", ""), ""),
    )
    if url is not None and not url.startswith("/"):
        response.headers["Content-Security-Policy"] = csp(origin_of(url))
    return response


def _request_of(row: Task) -> dict[str, Any]:
    """The request as submitted (its stored snapshot), else the fields the task holds."""
    if row.request_snapshot:
        return dict(row.request_snapshot)
    return {"model": row.model, "prompt": row.prompt, "seconds": row.duration_seconds}


_NOTICES = {
    "cancelled": "Cancelled: the held credits were released.",
    "replayed": "The webhook event is being delivered again.",
}


async def cancel(request: Request) -> Response:
    """The API's cancel (same settlement, same webhook); then back to the video."""
    await posted(request)
    row = await task_of(request)
    await cancel_video(ctx(request), row)
    return RedirectResponse(f"/console/videos/{row.id}?done=cancelled", status_code=303)


async def replay(request: Request) -> Response:
    """The API's replay of the task's latest webhook event, with its limits (counted
    against the admin client, which every admin key acts for)."""
    await posted(request)
    row = await task_of(request)
    context = ctx(request)
    async with context.engine.connect() as conn:
        entries = await timeline(conn, row.id)
        event_id = _last_event(entries)
        event = await events.event(conn, event_id, client_id=None) if event_id else None
    if event is None:
        raise ProblemError(Code.NOT_FOUND, "This video has no webhook event yet.")
    await replay_event(context, event, ADMIN_CLIENT)
    return RedirectResponse(f"/console/videos/{row.id}?done=replayed", status_code=303)
