"""The ``accounts`` and ``credit_entries`` tables: the credits ledger.

Conditional account updates plus append-only entries (docs/architecture.md, "Ledger").
Every function runs inside the caller's transaction; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import bindparam, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.repo._sql import insert_ignoring_conflicts
from core.repo.tables import accounts, entries, tasks
from schemas.clock import utcnow
from schemas.fields import INT32_MAX
from schemas.status import EntryKind

# What one account may hold in all (balance + held): the range of its INTEGER columns.
MAX_CREDITS = INT32_MAX


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's spendable ``balance`` and the ``held`` part reserved by active tasks."""

    balance: int
    held: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger line; ``amount`` is in credits, negative only for a downward adjust."""

    id: int
    client_id: str
    user: str
    task_id: str | None
    kind: EntryKind
    amount: int
    balance_after: int
    held_after: int
    reason: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Account:
    """An account row; ``active_tasks`` counts the user's tasks not yet settled."""

    client_id: str
    user: str
    balance: int
    held: int
    active_tasks: int


@dataclass(frozen=True, slots=True)
class Standing:
    """Why a hold may be refused: the spendable ``balance`` and the ``active_tasks``."""

    balance: int
    active_tasks: int


class LedgerError(Exception):
    """A ledger operation that may not happen (it would break an invariant)."""


async def ensure_account(conn: AsyncConnection, client_id: str, user: str) -> None:
    values = {"client_id": client_id, "user": user, "balance": 0, "held": 0, "updated_at": utcnow()}
    await conn.execute(insert_ignoring_conflicts(conn, accounts, values))


async def balance_of(conn: AsyncConnection, client_id: str, user: str) -> Balance:
    row = (
        await conn.execute(
            select(accounts.c.balance, accounts.c.held).where(
                accounts.c.client_id == client_id, accounts.c.user == user
            )
        )
    ).first()
    return Balance(row.balance, row.held) if row else Balance(0, 0)


async def standing_of(conn: AsyncConnection, client_id: str, user: str) -> Standing:
    """The account's balance and active task count (zeros for an account not made yet)."""
    query = select(accounts.c.balance, accounts.c.active_tasks).where(
        accounts.c.client_id == client_id, accounts.c.user == user
    )
    row = (await conn.execute(query)).first()
    return Standing(row.balance, row.active_tasks) if row else Standing(0, 0)


# Above any per-user limit of active tasks (the runtime config caps it at 10,000).
NO_ACTIVE_LIMIT = INT32_MAX

# Built once: hot statements with bound parameters skip SQLAlchemy's per-call
# construction and cache-key walk (the create and settle paths run them every time).
# ``active_tasks`` never goes below zero: a counter that drifted is the ledger
# invariants' to report, not a reason to refuse a settlement.
_ACTIVE_AFTER = accounts.c.active_tasks + bindparam("p_active_delta")
_MOVE = (
    update(accounts)
    .where(
        accounts.c.client_id == bindparam("p_client"),
        accounts.c.user == bindparam("p_user"),
        accounts.c.balance >= bindparam("p_guard_balance"),
        accounts.c.held >= bindparam("p_guard_held"),
        accounts.c.active_tasks < bindparam("p_active_limit"),
    )
    .values(
        balance=accounts.c.balance + bindparam("p_balance_delta"),
        held=accounts.c.held + bindparam("p_held_delta"),
        active_tasks=case((_ACTIVE_AFTER < 0, 0), else_=_ACTIVE_AFTER),
        updated_at=bindparam("p_now", type_=accounts.c.updated_at.type),
    )
    .returning(accounts.c.balance, accounts.c.held)
)
_ENTRY = insert(entries)
# A grant may not take balance + held past what an INTEGER column holds on PostgreSQL
# (holds and settlements only move credits between the two, or spend them).
_GRANT = _MOVE.where(accounts.c.balance <= bindparam("p_ceiling") - accounts.c.held)


async def _move(
    conn: AsyncConnection,
    client_id: str,
    user: str,
    *,
    balance_delta: int,
    held_delta: int,
    guard_balance: int = 0,
    guard_held: int = 0,
    active_delta: int = 0,
    active_limit: int = NO_ACTIVE_LIMIT,
    ceiling: int | None = None,
) -> Balance | None:
    """Apply deltas if ``balance >= guard_balance``, ``held >= guard_held`` and
    ``active_tasks < active_limit`` (and, with ``ceiling``, ``balance + held <= ceiling``)."""
    values = {
        "p_client": client_id,
        "p_user": user,
        "p_guard_balance": guard_balance,
        "p_guard_held": guard_held,
        "p_active_limit": active_limit,
        "p_balance_delta": balance_delta,
        "p_held_delta": held_delta,
        "p_active_delta": active_delta,
        "p_now": utcnow(),
    }
    if ceiling is None:
        result = await conn.execute(_MOVE, values)
    else:
        result = await conn.execute(_GRANT, {**values, "p_ceiling": ceiling})
    row = result.first()
    return Balance(row.balance, row.held) if row else None


async def _entry(
    conn: AsyncConnection,
    client_id: str,
    user: str,
    kind: EntryKind,
    amount: int,
    after: Balance,
    *,
    task_id: str | None = None,
    reason: str | None = None,
) -> None:
    settles = task_id if kind in (EntryKind.CAPTURE, EntryKind.RELEASE) else None
    await conn.execute(
        _ENTRY,
        {
            "client_id": client_id,
            "user": user,
            "task_id": task_id,
            "settles": settles,
            "kind": str(kind),
            "amount": amount,
            "balance_after": after.balance,
            "held_after": after.held,
            "reason": reason,
            "at": utcnow(),
        },
    )


async def hold(
    conn: AsyncConnection,
    client_id: str,
    user: str,
    task_id: str,
    amount: int,
    *,
    max_active: int = NO_ACTIVE_LIMIT,
) -> Balance | None:
    """Move ``amount`` from balance to held and count one more active task; None if the
    balance is short or the user already has ``max_active`` active tasks
    (:func:`standing_of` tells which).

    One conditional UPDATE: on PostgreSQL it locks the account row until commit, so
    concurrent creates of one user are serialised and each sees the others' counts.
    """
    after = await _move(
        conn,
        client_id,
        user,
        balance_delta=-amount,
        held_delta=amount,
        guard_balance=amount,
        active_delta=1,
        active_limit=max_active,
    )
    if after is not None:
        await _entry(conn, client_id, user, EntryKind.HOLD, amount, after, task_id=task_id)
    return after


async def capture(
    conn: AsyncConnection, client_id: str, user: str, task_id: str, amount: int
) -> Balance:
    """The held amount is spent; the task no longer counts as active."""
    return await _settle(conn, client_id, user, task_id, amount, EntryKind.CAPTURE)


async def release(
    conn: AsyncConnection, client_id: str, user: str, task_id: str, amount: int
) -> Balance:
    """The held amount goes back to the balance; the task no longer counts as active."""
    return await _settle(conn, client_id, user, task_id, amount, EntryKind.RELEASE)


async def _settle(
    conn: AsyncConnection, client_id: str, user: str, task_id: str, amount: int, kind: EntryKind
) -> Balance:
    refund = amount if kind == EntryKind.RELEASE else 0
    after = await _move(
        conn,
        client_id,
        user,
        balance_delta=refund,
        held_delta=-amount,
        guard_held=amount,
        active_delta=-1,
    )
    if after is None:
        raise LedgerError(f"{kind} of {amount} for {task_id}: not enough held")
    await _entry(conn, client_id, user, kind, amount, after, task_id=task_id)
    return after


async def grant(
    conn: AsyncConnection, client_id: str, user: str, amount: int, reason: str
) -> Balance | None:
    """Top up (amount > 0) or adjust down (amount < 0, never below zero); None when the
    balance would go below zero or balance + held past ``MAX_CREDITS``."""
    await ensure_account(conn, client_id, user)
    guard = -amount if amount < 0 else 0
    after = await _move(
        conn,
        client_id,
        user,
        balance_delta=amount,
        held_delta=0,
        guard_balance=guard,
        ceiling=MAX_CREDITS - max(amount, 0),
    )
    if after is not None:
        kind = EntryKind.GRANT if amount > 0 else EntryKind.ADJUST
        await _entry(conn, client_id, user, kind, amount, after, reason=reason)
    return after


_ENTRY_COLUMNS = [entries.c[f.name] for f in fields(Entry)]


async def recent_entries(
    conn: AsyncConnection, client_id: str, user: str, *, limit: int, before: int | None
) -> list[Entry]:
    """Up to ``limit + 1`` of the account's entries, newest first, older than ``before``."""
    query = select(*_ENTRY_COLUMNS).where(entries.c.client_id == client_id, entries.c.user == user)
    if before is not None:
        query = query.where(entries.c.id < before)
    rows = (await conn.execute(query.order_by(entries.c.id.desc()).limit(limit + 1))).mappings()
    return [Entry(**{**r, "kind": EntryKind(r["kind"])}) for r in rows]


async def all_entries(conn: AsyncConnection) -> list[Entry]:
    """The whole ledger (the invariant checks read it; not for request paths)."""
    rows = (await conn.execute(select(*_ENTRY_COLUMNS))).mappings()
    return [Entry(**{**r, "kind": EntryKind(r["kind"])}) for r in rows]


async def all_accounts(conn: AsyncConnection) -> list[Account]:
    """Every account (the invariant checks read them; not for request paths)."""
    query = select(
        accounts.c.client_id,
        accounts.c.user,
        accounts.c.balance,
        accounts.c.held,
        accounts.c.active_tasks,
    )
    return [Account(**r) for r in (await conn.execute(query)).mappings()]


async def held_total(conn: AsyncConnection) -> int:
    """Credits held over every account: reserved by tasks not yet captured or released."""
    query = select(func.coalesce(func.sum(accounts.c.held), 0))
    return int((await conn.execute(query)).scalar_one())


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One ledger entry as the console lists it: the entry, and the model and status of
    the task it belongs to (None for a grant or adjust, or a task no longer stored)."""

    id: int
    kind: EntryKind
    amount: int
    balance_after: int
    held_after: int
    reason: str | None
    task_id: str | None
    at: datetime
    task_model: str | None
    task_status: str | None


async def account_ledger(
    conn: AsyncConnection, client_id: str, user: str, *, before_id: int | None, limit: int
) -> list[LedgerLine]:
    """Up to ``limit`` of the account's entries, newest first, with ids below ``before_id``
    (pass the last id of a page for the next one); each with its task's model and status.
    The account's balance and held amount: :func:`balance_of`."""
    query = (
        select(
            entries.c.id,
            entries.c.kind,
            entries.c.amount,
            entries.c.balance_after,
            entries.c.held_after,
            entries.c.reason,
            entries.c.task_id,
            entries.c.at,
            tasks.c.model.label("task_model"),
            tasks.c.status.label("task_status"),
        )
        .select_from(entries.outerjoin(tasks, tasks.c.id == entries.c.task_id))
        .where(entries.c.client_id == client_id, entries.c.user == user)
    )
    if before_id is not None:
        query = query.where(entries.c.id < before_id)
    rows = (await conn.execute(query.order_by(entries.c.id.desc()).limit(limit))).mappings()
    return [LedgerLine(**{**r, "kind": EntryKind(r["kind"])}) for r in rows]
