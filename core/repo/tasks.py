"""The ``video_tasks`` table: every read and write of a task, and its typed read models.

State changes go through ``transition`` (one conditional UPDATE); ``core.settlement``
pairs the terminal ones with their ledger entry and outbox event in one transaction.
Statements on the hot paths (create, poll hop) are built once, with bound parameters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    ColumnElement,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from core.repo import _driver, activity
from core.repo.tables import tasks
from schemas.catalogue import ModelSpec
from schemas.clock import utcnow
from schemas.status import (
    ACTIVE,
    TERMINAL,
    ActivityKind,
    PublicStatus,
    StorageStatus,
    TaskStatus,
    internal_statuses,
)


@dataclass(frozen=True, slots=True)
class Task:
    """A whole task row. ``metadata`` is the column of that name (``VideoTask.meta``)."""

    id: str
    client_id: str
    user: str
    task_type: str
    status: TaskStatus
    upstream_task_id: str | None
    upstream_action: str | None
    upstream_route: str | None
    model: str
    prompt: str
    enhance_prompt: bool
    aspect_ratio: str | None
    resolution: str | None
    duration_seconds: int | None
    seed: int | None
    images: list[str]
    input_refs: list[str]
    upstream_submit_time: datetime | None
    upstream_start_time: datetime | None
    upstream_finish_time: datetime | None
    progress: int
    upstream_video_url: str | None
    video_key: str | None
    video_size: int | None
    video_sha256: str | None
    video_duration_ms: int | None
    video_width: int | None
    video_height: int | None
    video_fps: float | None
    video_codec: str | None
    video_has_audio: bool | None
    thumbnail_key: str | None
    spritesheet_key: str | None
    storage_status: str
    error_code: str | None
    error_message: str | None
    price: int
    request_snapshot: dict[str, Any]
    upstream_response: dict[str, Any]
    metadata: dict[str, str]
    webhook_url: str | None
    request_id: str | None
    polls: int
    submit_attempts: int
    store_attempts: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    deleted_at: datetime | None
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class PollView:
    """The few columns a poll hop needs (the hop runs thousands of times a minute)."""

    id: str
    status: TaskStatus
    model: str
    polls: int
    upstream_task_id: str | None
    created_at: datetime
    upstream_submit_time: datetime | None
    upstream_response: dict[str, Any]
    request_id: str | None
    upstream_route: str | None


@dataclass(frozen=True, slots=True)
class Overdue:
    """An active task whose next step is late, as the reconciler saw it."""

    id: str
    status: TaskStatus
    polls: int
    created_at: datetime
    next_attempt_at: datetime


@dataclass(frozen=True, slots=True)
class StoreAttempt:
    """A storing task after one more store attempt was counted."""

    store_attempts: int
    model: str
    upstream_video_url: str | None
    request_id: str | None
    upstream_route: str | None


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose hold a moved task carries: what a settlement needs."""

    client_id: str
    user: str
    price: int
    model: str
    polls: int
    upstream_finish_time: datetime | None


@dataclass(frozen=True, slots=True)
class LedgerView:
    """A task as the ledger invariants see it."""

    id: str
    status: TaskStatus
    price: int
    client_id: str
    user: str


T = TypeVar("T")


def _typed(cls: type[T], row: Mapping[Any, Any]) -> T:
    return cls(**{**row, "status": TaskStatus(row["status"])})


def _columns(cls: type[Any]) -> list[Any]:
    return [tasks.c[f.name] for f in fields(cls)]


_TASK = _columns(Task)


def _scalar_default(column: Any) -> Any:
    arg = getattr(column.default, "arg", None)
    return None if callable(arg) else arg


# Column defaults a create does not set, so the new task can be presented without
# reading it back.
_UNSET = {c.key: _scalar_default(c) for c in tasks.c}

_GET = select(*_TASK).where(tasks.c.id == bindparam("p_id"))
_POLL_VIEW = select(*_columns(PollView)).where(tasks.c.id == bindparam("p_id"))
_INSERT = insert(tasks)


def as_inserted(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every column of a new task inserted with ``values`` (keyed by column name): the
    given values, the column defaults for the rest."""
    return {**_UNSET, **values}


def inserted(values: Mapping[str, Any]) -> Task:
    """The task a row inserted with ``values`` holds, without reading it back."""
    return _typed(Task, as_inserted(values))


async def insert_task(conn: AsyncConnection, values: Mapping[str, Any]) -> Task:
    """Insert a new task (``values`` keyed by column name); the task as stored, with no
    second round trip."""
    await conn.execute(_INSERT, dict(values))
    return inserted(values)


async def load(conn: AsyncConnection, task_id: str) -> Task | None:
    row = (await conn.execute(_GET, {"p_id": task_id})).mappings().first()
    return _typed(Task, row) if row is not None else None


def _visible(client_id: str | None) -> ColumnElement[bool]:
    """Not deleted, and the client's own unless ``client_id`` is None (an admin)."""
    clause = tasks.c.deleted_at.is_(None)
    return clause if client_id is None else and_(clause, tasks.c.client_id == client_id)


async def visible(conn: AsyncConnection, task_id: str, *, client_id: str | None) -> Task | None:
    """The task if it exists, is not deleted and (unless ``client_id`` is None) is that
    client's."""
    query = select(*_TASK).where(tasks.c.id == task_id, _visible(client_id))
    row = (await conn.execute(query)).mappings().first()
    return _typed(Task, row) if row is not None else None


async def page(
    conn: AsyncConnection,
    *,
    client_id: str | None,
    limit: int,
    descending: bool,
    after: str | None,
    user: str | None,
    statuses: list[TaskStatus] | None,
) -> list[Task]:
    """Up to ``limit + 1`` visible tasks in id order (the extra one tells whether there are
    more), starting after the cursor ``after``."""
    query = select(*_TASK).where(_visible(client_id))
    if after is not None:
        query = query.where(tasks.c.id < after if descending else tasks.c.id > after)
    if user is not None:
        query = query.where(tasks.c.user == user)
    if statuses is not None:
        query = query.where(tasks.c.status.in_([str(s) for s in statuses]))
    order = tasks.c.id.desc() if descending else tasks.c.id.asc()
    rows = (await conn.execute(query.order_by(order).limit(limit + 1))).mappings()
    return [_typed(Task, r) for r in rows]


async def mark_deleted(conn: AsyncConnection, task_id: str, purge_due: datetime) -> bool:
    """Soft delete: the row stays for the ledger, hidden from every read, its objects
    ``deleting`` until the purge job removes them (the reconciler's due time:
    ``purge_due``). False if the task was already deleted."""
    now = utcnow()
    result = await conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.deleted_at.is_(None))
        .values(
            deleted_at=now,
            updated_at=now,
            storage_status=StorageStatus.DELETING,
            next_attempt_at=purge_due,
        )
    )
    return result.rowcount == 1


@dataclass(frozen=True, slots=True)
class PurgeDue:
    """A deleted task whose objects are still to be removed, as the reconciler saw it."""

    id: str
    next_attempt_at: datetime


def _deleting(task_id: str) -> ColumnElement[bool]:
    return and_(tasks.c.id == task_id, tasks.c.storage_status == str(StorageStatus.DELETING))


async def purge_scope(conn: AsyncConnection, task_id: str) -> bool | None:
    """What the purge job removes: True every object of a deleted task, False only the video
    objects of a task that ended without one (a store's cleanup failed), None nothing (the
    task's storage is not ``deleting``)."""
    query = select(tasks.c.deleted_at).where(_deleting(task_id))
    row = (await conn.execute(query)).first()
    return None if row is None else row.deleted_at is not None


async def leave_video_to_purge(conn: AsyncConnection, task_id: str, purge_due: datetime) -> bool:
    """A failed or cancelled task whose store could not remove the video it uploaded: its
    storage becomes ``deleting`` (the purge job's and the reconciler's work, due at
    ``purge_due``). False if the task completed after all (its row references the video)."""
    ended = [str(TaskStatus.FAILED), str(TaskStatus.CANCELLED)]
    result = await conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status.in_(ended))
        .values(storage_status=StorageStatus.DELETING, next_attempt_at=purge_due)
    )
    return result.rowcount == 1


async def mark_purged(conn: AsyncConnection, task_id: str) -> bool:
    """``deleting`` → ``deleted``: every object is gone. False if it was not deleting."""
    result = await conn.execute(
        update(tasks)
        .where(_deleting(task_id))
        .values(storage_status=StorageStatus.DELETED, next_attempt_at=None, updated_at=utcnow())
    )
    return result.rowcount == 1


async def defer_purge(conn: AsyncConnection, task_id: str, until: datetime) -> bool:
    """A purge failed and is retried: keep the reconciler away until ``until``."""
    result = await conn.execute(
        update(tasks).where(_deleting(task_id)).values(next_attempt_at=until)
    )
    return result.rowcount == 1


async def purges_due(conn: AsyncConnection, before: datetime, limit: int) -> list[PurgeDue]:
    """Deleted tasks whose purge should have happened before ``before``, oldest first.

    Deleted tasks are terminal and terminal tasks otherwise have no ``next_attempt_at``,
    so the (status, next_attempt_at) index finds them without reading the others.
    """
    query = (
        select(tasks.c.id, tasks.c.next_attempt_at)
        .where(
            tasks.c.status.in_([str(s) for s in TERMINAL]),
            tasks.c.next_attempt_at < before,
            tasks.c.storage_status == str(StorageStatus.DELETING),
        )
        .order_by(tasks.c.next_attempt_at)
        .limit(limit)
    )
    return [PurgeDue(r.id, r.next_attempt_at) for r in await conn.execute(query)]


async def claim_purge(conn: AsyncConnection, due: PurgeDue, until: datetime) -> bool:
    """Push an overdue purge's due time to ``until`` if nobody touched it since it was read."""
    result = await conn.execute(
        update(tasks)
        .where(_deleting(due.id), tasks.c.next_attempt_at == due.next_attempt_at)
        .values(next_attempt_at=until)
    )
    return result.rowcount == 1


async def transition(
    conn: AsyncConnection,
    task_id: str,
    expected: Iterable[TaskStatus],
    new: TaskStatus,
    **values: Any,
) -> Owner | None:
    """Move the task to ``new`` (setting ``values`` too) if it is in one of ``expected``.

    One conditional UPDATE; the owner of the moved task, or None if it was not in
    ``expected`` (another job won: do nothing else).
    """
    result = await conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status.in_([str(s) for s in expected]))
        .values(status=str(new), updated_at=utcnow(), **values)
        .returning(*_columns(Owner))
    )
    row = result.mappings().first()
    if row is None:
        return None
    detail = {"status": str(new)}
    if values.get("error_code"):
        detail["error_code"] = str(values["error_code"])
    await activity.record(conn, task_id, ActivityKind.STATUS, detail)
    return Owner(**row)


# The poll hop's two statements as the driver runs them on PostgreSQL (asyncpg prepares
# each text once per connection and reuses it): SQLAlchemy's execute path was about a
# quarter of a hop's CPU. Their names are the table's own columns, never input.
_PG_POLL_COLUMNS = ", ".join(f.name for f in fields(PollView))
_PG_POLL_VIEW = f"SELECT {_PG_POLL_COLUMNS} FROM video_tasks WHERE id = $1"  # noqa: S608
_PG_ADVANCE: dict[tuple[str, ...], str] = {}
_JSON_COLUMNS = frozenset(c.key for c in tasks.c if isinstance(c.type, JSON))


async def load_for_poll(conn: _driver.Connection, task_id: str) -> PollView | None:
    """The columns a poll hop needs, None if there is no such task. On PostgreSQL in
    autocommit (the hop's connection) the driver runs the prepared statement."""
    if _driver.autocommit(conn):
        record = await _driver.fetchrow(conn, _PG_POLL_VIEW, task_id)
        return _typed(PollView, record) if record is not None else None
    assert isinstance(conn, AsyncConnection)  # a PooledDriver took the driver path above
    row = (await conn.execute(_POLL_VIEW, {"p_id": task_id})).mappings().first()
    return _typed(PollView, row) if row is not None else None


def _pg_advance(names: tuple[str, ...]) -> str:
    """The conditional UPDATE of a hop setting ``names`` and, only when it moved the
    row, the history INSERT, as one statement (one round trip). Parameters: $1 id,
    $2 status, $3 polls expected, $4-$6 the activity row's at/kind/detail, then one per
    name in order."""
    sql = _PG_ADVANCE.get(names)
    if sql is None:
        sets = ["polls = $3 + 1"]
        for n, name in enumerate(names, start=7):
            column = tasks.c[name].name  # a key not of the table raises here
            value = f"GREATEST(progress, ${n})" if name == "progress" else f"${n}"
            sets.append(f'"{column}" = {value}')
        sql = _PG_ADVANCE[names] = (
            f"WITH moved AS (UPDATE video_tasks SET {', '.join(sets)}"  # noqa: S608
            " WHERE id = $1 AND status = $2 AND polls = $3 RETURNING id)"
            " INSERT INTO task_activity (task_id, at, kind, detail)"
            " SELECT id, $4::timestamptz, $5::varchar, $6::json FROM moved"
        )
    return sql


def _pg_value(name: str, value: Any) -> Any:
    """``value`` as the driver takes it for column ``name`` (what the column types do for
    SQLAlchemy: JSON as text, an aware datetime only)."""
    if name in _JSON_COLUMNS:
        return json.dumps(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("naive datetime")
    return value


async def advance_poll(
    conn: _driver.Connection, task: PollView, seen: Mapping[str, Any], **values: Any
) -> bool:
    """Record a poll hop, only if no other hop for this task got there first; ``seen``
    (the poll's ``task_activity`` detail) goes into the task's history when it did.

    A ``progress`` never lowers the stored one: estimates differ between hops (each worker
    learns its own durations, a provider's own figure may dip), the shown value must not.
    ``values`` are columns to set (by key); on PostgreSQL in autocommit the update and the
    history row are one driver statement, elsewhere two SQLAlchemy Core statements.
    """
    if _driver.autocommit(conn):
        names = tuple(sorted(values))
        status = await _driver.execute(
            conn,
            _pg_advance(names),
            task.id,
            str(TaskStatus.RUNNING),
            task.polls,
            utcnow(),
            str(ActivityKind.POLL),
            json.dumps(dict(seen)),
            *(_pg_value(name, values[name]) for name in names),
        )
        return bool(status == "INSERT 0 1")
    assert isinstance(conn, AsyncConnection)  # a PooledDriver took the driver path above
    if values.get("progress") is not None:
        given = values["progress"]
        values["progress"] = case((tasks.c.progress > given, tasks.c.progress), else_=given)
    result = await conn.execute(
        update(tasks)
        .where(
            tasks.c.id == task.id,
            tasks.c.status == str(TaskStatus.RUNNING),
            tasks.c.polls == task.polls,
        )
        .values(polls=task.polls + 1, **values)
    )
    if result.rowcount != 1:
        return False
    await activity.record(conn, task.id, ActivityKind.POLL, seen)
    return True


async def begin_store(conn: AsyncConnection, task_id: str) -> StoreAttempt | None:
    """Count one more store attempt of a storing task; None if it is not storing."""
    result = await conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status == str(TaskStatus.STORING))
        .values(store_attempts=tasks.c.store_attempts + 1)
        .returning(*_columns(StoreAttempt))
    )
    row = result.mappings().first()
    return StoreAttempt(**row) if row else None


async def uncount_store_attempt(conn: AsyncConnection, task_id: str) -> bool:
    """Take back the attempt ``begin_store`` counted: it met a storage outage, which says
    nothing about the download. False if the task is no longer storing."""
    result = await conn.execute(
        update(tasks)
        .where(
            tasks.c.id == task_id,
            tasks.c.status == str(TaskStatus.STORING),
            tasks.c.store_attempts > 0,
        )
        .values(store_attempts=tasks.c.store_attempts - 1)
    )
    return result.rowcount == 1


async def extend(conn: AsyncConnection, task_id: str, status: TaskStatus, until: datetime) -> bool:
    """A running job's heartbeat: keep the reconciler away while it makes progress."""
    result = await conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status == str(status))
        .values(next_attempt_at=until)
    )
    return result.rowcount == 1


async def overdue(
    conn: AsyncConnection,
    before: datetime,
    limit: int,
    statuses: Iterable[TaskStatus] = ACTIVE,
) -> list[Overdue]:
    """Tasks in ``statuses`` (the active ones by default) whose next step should have
    happened before ``before``, oldest first."""
    query = (
        select(*_columns(Overdue))
        .where(tasks.c.status.in_([str(s) for s in statuses]), tasks.c.next_attempt_at < before)
        .order_by(tasks.c.next_attempt_at)
        .limit(limit)
    )
    return [_typed(Overdue, r) for r in (await conn.execute(query)).mappings()]


async def claim_overdue(conn: AsyncConnection, task: Overdue, until: datetime) -> bool:
    """Push an overdue task's deadline to ``until`` if nobody touched it since it was read."""
    result = await conn.execute(
        update(tasks)
        .where(
            tasks.c.id == task.id,
            tasks.c.status == str(task.status),
            tasks.c.polls == task.polls,
            tasks.c.next_attempt_at == task.next_attempt_at,
        )
        .values(next_attempt_at=until)
    )
    return result.rowcount == 1


async def poll_position(conn: AsyncConnection, task_id: str) -> tuple[TaskStatus, int] | None:
    """(status, polls) of a task, for the upstream callback."""
    query = select(tasks.c.status, tasks.c.polls).where(tasks.c.id == task_id)
    row = (await conn.execute(query)).first()
    return (TaskStatus(row.status), row.polls) if row is not None else None


async def webhook_url_of(conn: AsyncConnection, task_id: str) -> str | None:
    query = select(tasks.c.webhook_url).where(tasks.c.id == task_id)
    url: str | None = (await conn.execute(query)).scalar_one_or_none()
    return url


async def ledger_views(conn: AsyncConnection) -> list[LedgerView]:
    """Every task, reduced to what the ledger invariants check."""
    query = select(*_columns(LedgerView))
    return [_typed(LedgerView, r) for r in (await conn.execute(query)).mappings()]


@dataclass(frozen=True, slots=True)
class ActiveTasks:
    """The active (not terminal) tasks at one instant, from one statement (so the two
    scrape-time gauges made of it always agree): ``counts`` (status, model) → how many;
    ``oldest`` status → when the task longest in it got there (``updated_at``, which every
    transition sets), telling a stuck task from a busy status. Terminal tasks are counted
    as they end, not here (a scan of every task ever made on each scrape)."""

    counts: dict[tuple[str, str], int]
    oldest: dict[str, datetime]


async def active_tasks(conn: AsyncConnection) -> ActiveTasks:
    """:class:`ActiveTasks` now: one GROUP BY over the active statuses."""
    query = (
        select(tasks.c.status, tasks.c.model, func.count(), func.min(tasks.c.updated_at))
        .where(tasks.c.status.in_([str(s) for s in ACTIVE]))
        .group_by(tasks.c.status, tasks.c.model)
    )
    counts: dict[tuple[str, str], int] = {}
    oldest: dict[str, datetime] = {}
    for status, model, count, since in await conn.execute(query):
        counts[(status, model)] = int(count)
        if status not in oldest or since < oldest[status]:
            oldest[status] = since
    return ActiveTasks(counts, oldest)


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """What the console's video list narrows by; every field optional (None: any).

    ``status``: a :class:`PublicStatus` matches the internal statuses the API shows as it
    (``failed`` is failed or cancelled), a :class:`TaskStatus` only itself. ``provider``: the
    provider kind of the route the task was submitted on (``upstream_route``), or, for a
    task not submitted yet, the kind ``model_providers`` gives its model (the first route in
    the catalogue; build it with :func:`model_providers`). ``created_from`` inclusive,
    ``created_to`` exclusive. ``deleted``: deleted tasks are left out unless True.
    """

    client_id: str | None = None
    user: str | None = None
    status: PublicStatus | TaskStatus | None = None
    model: str | None = None
    provider: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    model_providers: Mapping[str, str] | None = None
    deleted: bool = False


def model_providers(models: Iterable[ModelSpec], default_kind: str) -> dict[str, str]:
    """Public model id → the provider kind its first route names (``default_kind``, the
    configured upstream, for a model that names none): where a new task of it goes."""
    return {spec.id: spec.route_list(default_kind)[0].provider for spec in models}


def _id_at(moment: datetime) -> str:
    """The smallest task id made at ``moment`` (ids start with their creation time)."""
    return f"video_{int(moment.timestamp() * 1000):012x}"


def _clamped(moment: datetime, by: timedelta = timedelta(0)) -> datetime:
    """``moment + by`` in UTC, held at the calendar's first or last moment (a filter may
    ask for year 1 or 9999, in any offset); a naive ``moment`` is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return (moment + by).astimezone(UTC)
    except OverflowError:
        edge = datetime.min if moment.year < 5000 else datetime.max
        return edge.replace(tzinfo=UTC)


async def search(
    conn: AsyncConnection, filters: TaskFilter, *, before: str | None, limit: int
) -> list[Task]:
    """Up to ``limit`` tasks matching ``filters``, newest first, older than the cursor
    ``before`` (a task id: pass the last id of a page to get the next one; ids sort by
    creation time, so pages are stable while new tasks arrive). Ask for one more than a
    page to learn whether another follows.

    A time range also bounds the id (ids start with their creation millisecond, a minute
    of slack for the clock between id and row), so it walks the primary key only there.
    """
    query = select(*_TASK)
    if not filters.deleted:
        query = query.where(tasks.c.deleted_at.is_(None))
    if before is not None:
        query = query.where(tasks.c.id < before)
    if filters.client_id is not None:
        query = query.where(tasks.c.client_id == filters.client_id)
    if filters.user is not None:
        query = query.where(tasks.c.user == filters.user)
    if isinstance(filters.status, PublicStatus):
        query = query.where(tasks.c.status.in_([str(s) for s in internal_statuses(filters.status)]))
    elif filters.status is not None:
        query = query.where(tasks.c.status == str(filters.status))
    if filters.model is not None:
        query = query.where(tasks.c.model == filters.model)
    if filters.provider is not None:
        query = query.where(_on_provider(filters.provider, filters.model_providers or {}))
    if filters.created_from is not None:
        query = query.where(
            tasks.c.created_at >= _clamped(filters.created_from),
            tasks.c.id >= _id_at(_clamped(filters.created_from, -_ID_SLACK)),
        )
    if filters.created_to is not None:
        query = query.where(
            tasks.c.created_at < _clamped(filters.created_to),
            tasks.c.id < _id_at(_clamped(filters.created_to, _ID_SLACK)),
        )
    rows = (await conn.execute(query.order_by(tasks.c.id.desc()).limit(limit))).mappings()
    return [_typed(Task, r) for r in rows]


_ID_SLACK = timedelta(minutes=1)


def _on_provider(kind: str, providers: Mapping[str, str]) -> ColumnElement[bool]:
    # LIKE's wildcards cannot occur: a kind matches KIND_PATTERN (letters, digits, _ and -)
    # — but "_" is one, so it is escaped.
    pattern = kind.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ":%"
    recorded = tasks.c.upstream_route.like(pattern, escape="\\")
    models = [model for model, provider in providers.items() if provider == kind]
    if not models:
        return recorded
    return or_(recorded, and_(tasks.c.upstream_route.is_(None), tasks.c.model.in_(models)))


async def completion_lags(conn: AsyncConnection, since: datetime, limit: int) -> list[float]:
    """Seconds from the provider's finish (``upstream_finish_time``) to completed
    (``completed_at``) of up to ``limit`` tasks completed at or after ``since``, the latest
    first: noticing and storing a finished video. Uses the ``completed_at`` index."""
    query = (
        select(tasks.c.upstream_finish_time, tasks.c.completed_at)
        .where(
            tasks.c.completed_at >= since,
            tasks.c.status == str(TaskStatus.COMPLETED),
            tasks.c.upstream_finish_time.is_not(None),
        )
        .order_by(tasks.c.completed_at.desc())
        .limit(limit)
    )
    return [
        max(0.0, (done - finished).total_seconds()) for finished, done in await conn.execute(query)
    ]
