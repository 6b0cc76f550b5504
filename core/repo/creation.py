"""A create's writes, all or nothing: the hold on the user's account (which also counts
the task as active, within the per-user limit), its ledger entry and the task row.

On PostgreSQL this is ONE statement run on the asyncpg connection (``core.repo._driver``):
a data-modifying CTE whose conditional UPDATE of the account gates both INSERTs, so a
refused create writes nothing and an accepted one costs one round trip. The UPDATE locks
the account row until the statement's transaction ends: concurrent creates of one user
are serialised and each sees the balance and count the others left. On SQLite the same
three statements run through SQLAlchemy Core in the caller's transaction (SQLite
serialises writers itself).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import JSON, String, TypeDecorator

from core.repo import credits
from core.repo import tasks as task_rows
from core.repo._driver import fetchrow
from core.repo.tables import tasks
from schemas.status import EntryKind

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]
_COLUMNS = list(tasks.c)
_JSON_KEYS = frozenset(c.key for c in _COLUMNS if isinstance(c.type, JSON))


def _param(key: str) -> str:
    """The ``$n`` of a task column, cast to the column's type (a parameter in a SELECT
    list has no type PostgreSQL could infer). Strings are cast to unbounded VARCHAR: a
    cast to VARCHAR(n) would cut a longer value where the INSERT refuses it."""
    index = next(i for i, c in enumerate(_COLUMNS) if c.key == key)
    column = _COLUMNS[index]
    kind = "VARCHAR" if _textual(column) else column.type.compile(dialect=_PG)
    return f"${index + 1}::{kind}"


def _textual(column: Any) -> bool:
    base = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
    return isinstance(base, String)


def _quoted(name: str) -> str:
    return str(_PG.identifier_preparer.quote(name))


_LIMIT = f"${len(_COLUMNS) + 1}::INTEGER"
_CLIENT, _USER, _ID, _PRICE, _NOW = (
    _param(k) for k in ("client_id", "user", "id", "price", "created_at")
)
# $1…$n: the task's columns in table order; $n+1: the user's limit of active tasks.
_CREATE = f"""
WITH moved AS (
    UPDATE accounts
    SET balance = balance - {_PRICE}, held = held + {_PRICE},
        active_tasks = active_tasks + 1, updated_at = {_NOW}
    WHERE client_id = {_CLIENT} AND "user" = {_USER}
        AND balance >= {_PRICE} AND active_tasks < {_LIMIT}
    RETURNING balance, held
), entry AS (
    INSERT INTO credit_entries
        (client_id, "user", task_id, settles, kind, amount, balance_after, held_after, at)
    SELECT {_CLIENT}, {_USER}, {_ID}, NULL, '{EntryKind.HOLD}', {_PRICE}, balance, held, {_NOW}
    FROM moved
)
INSERT INTO video_tasks ({", ".join(_quoted(c.name) for c in _COLUMNS)})
SELECT {", ".join(_param(c.key) for c in _COLUMNS)} FROM moved
RETURNING 1
"""  # noqa: S608 (built from the table's own columns, no input)


async def create_held(
    conn: AsyncConnection, values: Mapping[str, Any], *, max_active: int
) -> task_rows.Task | None:
    """Hold the new task's ``price`` on its user's account and count it active, write the
    hold entry and insert the task (``values`` keyed by column name, ``created_at`` the
    time the account and the entry record too). None, with nothing written, when the
    balance is short of the price or the user already has ``max_active`` active tasks
    (``credits.standing_of`` tells which).

    On PostgreSQL one statement, atomic on its own: ``conn`` may be in autocommit or in a
    transaction that has begun (a statement ran in it). Database errors are SQLAlchemy's
    ``DBAPIError`` either way.
    """
    if conn.dialect.name == "postgresql":
        row = await fetchrow(conn, _CREATE, *_arguments(values), max_active)
        return None if row is None else task_rows.inserted(values)
    held = await credits.hold(
        conn,
        values["client_id"],
        values["user"],
        values["id"],
        values["price"],
        max_active=max_active,
    )
    return None if held is None else await task_rows.insert_task(conn, values)


# (column key, its default, how asyncpg takes the value: "json" as text, "str" a plain str).
_SHAPES = [
    (
        c.key,
        task_rows.as_inserted({})[c.key],
        "json" if c.key in _JSON_KEYS else "str" if _textual(c) else "",
    )
    for c in _COLUMNS
]


def _arguments(values: Mapping[str, Any]) -> list[Any]:
    """The task's columns in table order, as asyncpg takes them: JSON as its text, the
    status enums as plain strings."""
    out: list[Any] = []
    for key, default, shape in _SHAPES:
        value = values.get(key, default)
        if value is not None and shape:
            value = json.dumps(value) if shape == "json" else str(value)
        out.append(value)
    return out
