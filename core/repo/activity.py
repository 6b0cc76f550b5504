"""The ``task_activity`` table: what happened to a task, one row per event, for the
operator console's timeline.

Rows are written by the repositories and jobs that make the events happen, in the same
statement batch (a transition's row in its transaction): ``kind`` is an
:class:`~schemas.status.ActivityKind`; ``detail`` is a small JSON object whose keys are:

- ``status``: ``status`` (the new task status), ``error_code`` when it carries one;
- ``submit``: ``route`` (provider kind), ``latency_ms``, then ``upstream_task_id`` on
  success or ``error`` (the upstream error code) on failure;
- ``poll``: ``latency_ms``, then ``state`` (the upstream's state, e.g. ``running``) and
  ``progress`` (0-100 or absent) on an answer, or ``error`` (code) on trouble.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.repo.tables import activity, tasks
from schemas.clock import utcnow
from schemas.status import ActivityKind

# A timeline is read whole; a task polled for days stops growing its page here.
TIMELINE_LIMIT = 2000
# Rows one purge statement deletes at most (a short transaction each; ids, not a count).
PURGE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Activity:
    at: datetime
    kind: ActivityKind
    detail: dict[str, Any]


_RECORD = insert(activity)


async def record(
    conn: AsyncConnection,
    task_id: str,
    kind: ActivityKind,
    detail: Mapping[str, Any],
    at: datetime | None = None,
) -> None:
    """Append one row to the task's history; ``at`` defaults to now (a call that took
    long is stamped with its start, so it sits before what happened meanwhile)."""
    row = {"task_id": task_id, "at": at or utcnow(), "kind": str(kind), "detail": dict(detail)}
    await conn.execute(_RECORD, row)


async def timeline(conn: AsyncConnection, task_id: str) -> list[Activity]:
    """The task's history, oldest first (at most :data:`TIMELINE_LIMIT` rows)."""
    rows = await conn.execute(
        select(activity.c.at, activity.c.kind, activity.c.detail)
        .where(activity.c.task_id == task_id)
        .order_by(activity.c.id)
        .limit(TIMELINE_LIMIT)
    )
    return [Activity(row.at, ActivityKind(row.kind), dict(row.detail)) for row in rows]


@dataclass(frozen=True, slots=True)
class Calls:
    """Upstream calls (submits and polls) of one provider, and how many of them failed."""

    calls: int
    errors: int


async def upstream_calls(conn: AsyncConnection, since: datetime) -> dict[str, Calls]:
    """Provider kind → the submit and poll calls recorded at or after ``since`` and how many
    ended in an error. A submit names its route; a poll is counted for the route its task
    was last submitted on. Grouped in the database, over the rows from
    :func:`first_id_since` on (no index on ``at``: the table takes a row per poll)."""
    lower = await first_id_since(conn, since)
    if lower is None:
        return {}
    errored = activity.c.detail["error"].as_string().is_not(None)
    recorded = activity.c.detail["route"].as_string()
    query = (
        select(
            activity.c.kind,
            recorded.label("route"),
            tasks.c.upstream_route,
            errored.label("errored"),
            func.count(),
        )
        .select_from(activity.outerjoin(tasks, tasks.c.id == activity.c.task_id))
        .where(
            activity.c.id >= lower,
            activity.c.at >= since,
            activity.c.kind.in_([str(ActivityKind.SUBMIT), str(ActivityKind.POLL)]),
        )
        .group_by(activity.c.kind, recorded, tasks.c.upstream_route, errored)
    )
    totals: dict[str, list[int]] = {}
    for kind, route, task_route, failed, count in await conn.execute(query):
        provider = route if kind == ActivityKind.SUBMIT and route else _kind_of(task_route)
        counts = totals.setdefault(provider, [0, 0])
        counts[0] += int(count)
        counts[1] += int(count) if failed else 0
    return {provider: Calls(*counts) for provider, counts in totals.items()}


def _kind_of(route: str | None) -> str:
    # A poll's task always has a route (polling starts once a submit recorded it).
    return route.split(":", 1)[0] if route else "unknown"


async def first_id_since(conn: AsyncConnection, since: datetime) -> int | None:
    """A lower bound on the ids of the rows recorded at or after ``since`` (None when the
    newest row is older): a binary search over the primary key, about log2(ids) point
    reads. Rows are numbered as they are written and stamped then, so ``at`` grows with
    ``id`` (up to the clock differences between processes, which only blur the edge)."""
    bounds = (await conn.execute(select(func.min(activity.c.id), func.max(activity.c.id)))).one()
    if bounds[0] is None:
        return None
    newest = select(activity.c.at).where(activity.c.id == bounds[1])
    if (await conn.execute(newest)).scalar_one() < since:
        return None
    # Every row below `low` is older than `since`; the first row from `high` on is not.
    low, high = int(bounds[0]), int(bounds[1])
    while low < high:
        middle = (low + high) // 2
        row = (
            await conn.execute(
                select(activity.c.id, activity.c.at)
                .where(activity.c.id >= middle)
                .order_by(activity.c.id)
                .limit(1)
            )
        ).one()
        if row.at >= since:
            high = middle
        else:
            low = int(row.id) + 1
    return low


async def purge_before(conn: AsyncConnection, before: datetime, *, batch: int = PURGE_BATCH) -> int:
    """Delete the rows stamped before ``before``; how many went. ``conn`` autocommits
    (``core.db.autocommit``): each batch (``batch`` rows at most, ids in order, gaps
    skipped) is a statement of its own, so no lock is held for long.

    Only a row's own ``at`` decides: :func:`first_id_since` (no index on ``at``) only
    bounds how far the walk goes, so a writer whose clock is off, or a row committed
    meanwhile, never takes another's rows with it. A writer's clock far behind can move
    that bound up to the newest row: the walk then reads the whole table's ids."""
    upper = await first_id_since(conn, before)
    if upper is None:  # no row is stamped from ``before`` on: walk them all
        newest = (await conn.execute(select(func.max(activity.c.id)))).scalar()
        if newest is None:
            return 0
        upper = int(newest) + 1
    purged, low = 0, 0
    while True:
        ids = select(activity.c.id).where(activity.c.id >= low, activity.c.id < upper)
        window = ids.order_by(activity.c.id).limit(batch).subquery()
        high = (await conn.execute(select(func.max(window.c.id)))).scalar()
        if high is None:
            return purged
        old = delete(activity).where(activity.c.id.between(low, high), activity.c.at < before)
        purged += int((await conn.execute(old)).rowcount)
        low = int(high) + 1
