"""One task's timeline for the operator console: everything that happened to it, read
from the tables that record it and merged by time.

Sources (the ``source`` of a :class:`TimelineEntry`):

- ``task``: the creation (``video_tasks.created_at``);
- ``status``: each status transition (``task_activity``);
- ``submit``: each upstream submit call (route, latency, upstream id or error);
- ``poll``: each upstream poll (state, progress, latency or error);
- ``store``: the video stored (the task's ``completed_at``, size and SHA-256), when it was;
- ``ledger``: the task's credit entries (hold, then capture or release);
- ``event``: the webhook events of the task;
- ``delivery``: each HTTP attempt of each delivery of those events (status code, latency,
  error), or a delivery with no attempt yet.

Bounded: the activity rows are capped by :data:`core.repo.activity.TIMELINE_LIMIT` (a task
polled for days shows its first ones), the deliveries by :data:`DELIVERY_LIMIT` per event;
the ledger holds at most three entries per task and the events one per final status.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.repo import activity, events
from core.repo.tables import entries
from core.repo.tables import events as events_table
from core.repo.tasks import Task, load
from schemas.status import ActivityKind, EntryKind

# Deliveries read per event (targets: the endpoints subscribed plus a per-request URL).
DELIVERY_LIMIT = 50


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One thing that happened. ``title`` is short plain text (the UI escapes it),
    ``detail`` the recorded facts as JSON-able values, ``ok`` False for an error or a
    failure, True for a success, None when neither applies."""

    at: datetime
    source: str  # "task"|"status"|"submit"|"poll"|"store"|"ledger"|"event"|"delivery"
    title: str
    detail: dict[str, Any] = field(default_factory=dict)
    ok: bool | None = None


def _ms(detail: dict[str, Any]) -> str:
    latency = detail.get("latency_ms")
    return f" ({latency} ms)" if latency is not None else ""


def activity_entry(row: activity.Activity) -> TimelineEntry:
    """One ``task_activity`` row as a timeline entry: its title from the detail's keys
    (``core/repo/activity.py``), ``ok`` False for an error, a ``failed`` status or an
    upstream that answered ``failed``."""
    detail = row.detail
    if row.kind == ActivityKind.STATUS:
        status = str(detail.get("status", "?"))
        failed = status == "failed" or bool(detail.get("error_code"))
        title = status + (f": {detail['error_code']}" if detail.get("error_code") else "")
        return TimelineEntry(row.at, "status", title, detail, False if failed else None)
    if row.kind == ActivityKind.SUBMIT:
        route = detail.get("route", "?")
        if detail.get("error"):
            title = f"submit to {route} failed: {detail['error']}{_ms(detail)}"
            return TimelineEntry(row.at, "submit", title, detail, False)
        upstream = detail.get("upstream_task_id", "?")
        title = f"submit to {route}: {upstream}{_ms(detail)}"
        return TimelineEntry(row.at, "submit", title, detail, True)
    if detail.get("error"):
        return TimelineEntry(row.at, "poll", f"poll: {detail['error']}{_ms(detail)}", detail, False)
    state = detail.get("state", "?")
    progress = detail.get("progress")
    shown = f" {progress}%" if progress is not None else ""
    title = f"poll: {state}{shown}{_ms(detail)}"
    return TimelineEntry(row.at, "poll", title, detail, state != "failed")


async def _ledger(conn: AsyncConnection, task_id: str) -> list[TimelineEntry]:
    query = (
        select(
            entries.c.id,
            entries.c.kind,
            entries.c.amount,
            entries.c.balance_after,
            entries.c.held_after,
            entries.c.at,
        )
        .where(entries.c.task_id == task_id)
        .order_by(entries.c.id)
    )
    found = []
    for row in (await conn.execute(query)).mappings():
        kind = EntryKind(row["kind"])
        detail = {k: row[k] for k in ("id", "kind", "amount", "balance_after", "held_after")}
        title = f"{kind} {row['amount']} credits"
        found.append(TimelineEntry(row["at"], "ledger", title, detail, None))
    return found


async def _webhooks(conn: AsyncConnection, task_id: str) -> list[TimelineEntry]:
    query = (
        select(events_table.c.id, events_table.c.type, events_table.c.created_at)
        .where(events_table.c.task_id == task_id)
        .order_by(events_table.c.id)
    )
    found = []
    for event in (await conn.execute(query)).mappings():
        detail = {"event_id": event["id"], "type": event["type"]}
        found.append(TimelineEntry(event["created_at"], "event", f"event {event['type']}", detail))
        for delivery, attempts in await events.deliveries_of(
            conn, event["id"], limit=DELIVERY_LIMIT - 1
        ):
            about = {
                "delivery_id": delivery.id,
                "url": delivery.url,
                "endpoint_id": delivery.endpoint_id,
                "delivery_status": str(delivery.status),
            }
            if not attempts:
                title = f"delivery to {delivery.url}: {delivery.status}, no attempt yet"
                found.append(TimelineEntry(event["created_at"], "delivery", title, about))
            for number, attempt in enumerate(attempts, 1):
                ok = attempt.status_code is not None and 200 <= attempt.status_code < 300
                answer = attempt.status_code if attempt.status_code is not None else "no answer"
                error = f", {attempt.error}" if attempt.error else ""
                title = (
                    f"delivery #{number} to {delivery.url}: {answer}{error} "
                    f"({attempt.latency_ms} ms)"
                )
                detail = {
                    **about,
                    "attempt": number,
                    "status_code": attempt.status_code,
                    "latency_ms": attempt.latency_ms,
                    "error": attempt.error,
                }
                found.append(TimelineEntry(attempt.at, "delivery", title, detail, ok))
    return found


def _store(task: Task) -> TimelineEntry | None:
    if task.video_key is None or task.completed_at is None:
        return None
    detail = {
        "video_key": task.video_key,
        "video_size": task.video_size,
        "video_sha256": task.video_sha256,
    }
    size = f" {task.video_size} bytes" if task.video_size is not None else ""
    return TimelineEntry(task.completed_at, "store", f"video stored:{size}", detail, True)


async def timeline(conn: AsyncConnection, task_id: str) -> list[TimelineEntry]:
    """Everything that happened to the task, oldest first; an empty list when no such
    task exists (deleted tasks included: an operator may look at one).

    Entries are ordered by ``at``, except that nothing sorts before the creation (a hold
    written in the create's transaction may carry an earlier instant); ties keep the
    order of the sources above, then of their rows.
    """
    task = await load(conn, task_id)
    if task is None:
        return []
    found = [TimelineEntry(task.created_at, "task", "created", _created(task))]
    found += _in_causal_order(
        [activity_entry(row) for row in await activity.timeline(conn, task_id)]
    )
    if (stored := _store(task)) is not None:
        found.append(stored)
    found += await _ledger(conn, task_id)
    found += await _webhooks(conn, task_id)
    start = task.created_at
    keys = {id(entry): (max(entry.at, start), n) for n, entry in enumerate(found)}
    return sorted(found, key=lambda e: keys[id(e)])


def _in_causal_order(history: list[TimelineEntry]) -> list[TimelineEntry]:
    """The history with the poll that saw the video finished put before the ``storing``
    it caused: the poll job records that poll in the transition's own transaction, just
    after the transition's row. Its ``at`` becomes the transition's (a few microseconds
    earlier than its own) so that the merge by time keeps the order."""
    ordered = list(history)
    for n in range(len(ordered) - 1):
        status, poll = ordered[n], ordered[n + 1]
        if (
            status.source == "status"
            and status.detail.get("status") == "storing"
            and poll.source == "poll"
        ):
            ordered[n], ordered[n + 1] = replace(poll, at=status.at), status
    return ordered


def _created(task: Task) -> dict[str, Any]:
    return {
        "client_id": task.client_id,
        "user": task.user,
        "model": task.model,
        "task_type": task.task_type,
        "price": task.price,
        "request_id": task.request_id,
    }
