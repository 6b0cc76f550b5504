"""Stateful property test of the credits ledger and the task state machine
(docs/architecture.md, "Task state machine" and "Ledger").

A hypothesis state machine interleaves grants, adjusts, creates (hold + task row in one
transaction), forward transitions, settlements, duplicate and concurrent deliveries,
settlement races and transactions that crash half-way, against a freshly migrated SQLite
file per run. A plain model of every account and task is compared with the database after
each step, and ``core.invariants.ledger_violations`` must stay empty throughout.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)
from sqlalchemy import event as sa_event
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core import settlement
from core.db import make_engine
from core.invariants import ledger_violations
from core.migrate import upgrade
from core.repo import credits as ledger
from core.repo.tables import accounts, deliveries, entries, events, tasks
from core.repo.tasks import insert_task, transition
from schemas.clock import utcnow
from schemas.problems import FailureCode
from schemas.status import ACTIVE, EntryKind, TaskStatus, TaskType

T = TypeVar("T")
Account = tuple[str, str]

# Two users of one client plus the same user name under another client: the account key
# is (client_id, user), so "acme/alice" and "beta/alice" must never mix.
ACCOUNTS: list[Account] = [("acme", "alice"), ("acme", "bob"), ("beta", "alice")]

FORWARD = {
    TaskStatus.QUEUED: TaskStatus.SUBMITTING,
    TaskStatus.SUBMITTING: TaskStatus.RUNNING,
    TaskStatus.RUNNING: TaskStatus.STORING,
}


def settled(result: object) -> bool:
    """Whether a settlement call moved the task: ``Settled`` (or True) vs None (or False)."""
    return result is not None and result is not False


async def _complete(conn: AsyncConnection, task_id: str) -> bool:
    return settled(await settlement.complete(conn, task_id))


async def _fail(conn: AsyncConnection, task_id: str) -> bool:
    return settled(await settlement.fail(conn, task_id, FailureCode.UPSTREAM_FAILED, "x"))


async def _cancel(conn: AsyncConnection, task_id: str) -> bool:
    return settled(await settlement.cancel(conn, task_id))


Settle = Callable[[AsyncConnection, str], Awaitable[bool]]

# op -> (settlement function, terminal status, error code on the row)
SETTLEMENTS: dict[str, tuple[Settle, TaskStatus, str | None]] = {
    "complete": (_complete, TaskStatus.COMPLETED, None),
    "fail": (_fail, TaskStatus.FAILED, str(FailureCode.UPSTREAM_FAILED)),
    "cancel": (_cancel, TaskStatus.CANCELLED, str(FailureCode.CANCELLED)),
}
OPS = st.sampled_from(sorted(SETTLEMENTS))
# The event a terminal task writes to the outbox, in its settling transaction.
EVENT_TYPES = {
    TaskStatus.COMPLETED: "video.completed",
    TaskStatus.FAILED: "video.failed",
    TaskStatus.CANCELLED: "video.cancelled",
}
WEBHOOK_URL = "https://hooks.example.com/video"


class Crash(Exception):
    """Raised inside a transaction to simulate a process dying before commit."""


@dataclass
class Funds:
    balance: int = 0
    held: int = 0


@dataclass
class TaskModel:
    account: Account
    price: int
    # None: the id was handed out but its create was refused, so no row exists.
    status: TaskStatus | None = TaskStatus.QUEUED
    error_code: str | None = None


@dataclass
class DbState:
    violations: list[str]
    accounts: list[Any]
    tasks: list[Any]
    double_settled: list[Any]
    latest_entries: list[Any]
    events: list[tuple[str, str, int]]


def has_webhook(task_id: str) -> bool:
    """Every other task carries a per-request webhook URL (one delivery per event)."""
    return int(task_id.rsplit("_", 1)[1]) % 2 == 1


def task_values(task_id: str, account: Account, price: int) -> dict[str, Any]:
    """The row ``service.creation._create`` writes, minus what the ledger does not read."""
    now = utcnow()
    client_id, user = account
    return {
        "id": task_id,
        "client_id": client_id,
        "user": user,
        "task_type": TaskType.TEXT_TO_VIDEO,
        "status": TaskStatus.QUEUED,
        "model": "veo3",
        "prompt": "p",
        "enhance_prompt": False,
        "images": [],
        "input_refs": [],
        "price": price,
        "request_snapshot": {},
        "upstream_response": {},
        "metadata": {},
        "webhook_url": WEBHOOK_URL if has_webhook(task_id) else None,
        "created_at": now,
        "updated_at": now,
        "next_attempt_at": now,
    }


def applies(op: str, status: TaskStatus | None) -> bool:
    """Whether settlement ``op`` may move a task in ``status``."""
    if op == "complete":
        return status == TaskStatus.STORING
    return status in ACTIVE


async def snapshot(conn: AsyncConnection) -> tuple[list[Any], ...]:
    """Every row of the ledger and outbox tables, to prove a step changed nothing."""
    tables = []
    for t in (tasks, accounts, entries, events, deliveries):
        rows = (await conn.execute(select(t).order_by(*t.primary_key))).all()
        tables.append([tuple(r) for r in rows])
    return tuple(tables)


@functools.cache
def _migrated_template() -> Path:
    """A migrated SQLite file, made once per process: each run starts from a copy (running
    the migrations for each of the ~30 runs was a quarter of this test's time)."""
    folder = Path(tempfile.mkdtemp(prefix="ledger-props-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "template.db"

    async def migrate() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(engine)
            async with engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            await engine.dispose()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(migrate())
    finally:
        loop.close()
    return path


class LedgerMachine(RuleBasedStateMachine):
    tasks_b = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="ledger-props-"))
        shutil.copyfile(_migrated_template(), self.dir / "ledger.db")
        self.engine: AsyncEngine = make_engine(f"sqlite+aiosqlite:///{self.dir / 'ledger.db'}")
        self.funds: dict[Account, Funds] = {}
        self.tasks: dict[str, TaskModel] = {}
        self.counter = 0

    def teardown(self) -> None:
        try:
            self.run(self.engine.dispose())
        finally:
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- plumbing ---------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def tx(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with self.engine.begin() as conn:
            return await fn(conn)

    async def concurrently(self, *bodies: Callable[[AsyncConnection], Awaitable[T]]) -> list[T]:
        """Each body in its own transaction on its own connection, overlapping in time.

        All connections are opened first (opening one takes longer than a whole
        transaction, which would make the "race" serial). Body i+1 starts as soon as
        body i has executed its first statement (a write: the conditional UPDATE), so
        every later transaction is open, and its UPDATE issued, while the earlier ones
        are still uncommitted; SQLite makes it wait for the write lock (busy_timeout).
        The gate makes the order of the writers, and so the winner, the order of
        ``bodies``: the drawn order decides the outcome and failures replay exactly.
        """
        gates = [asyncio.Event() for _ in bodies]

        async def one(i: int, conn: AsyncConnection) -> T:
            if i:
                await gates[i - 1].wait()
            try:
                async with conn.begin():
                    return await bodies[i](conn)
            finally:
                gates[i].set()

        async with AsyncExitStack() as stack:
            conns = []
            for gate in gates:
                conn = await stack.enter_async_context(self.engine.connect())
                sa_event.listen(
                    conn.sync_connection, "after_cursor_execute", lambda *_, g=gate: g.set()
                )
                conns.append(conn)
            # Let every transaction finish (commit or roll back) before the connections
            # close, even when one of them raises.
            results = await asyncio.gather(
                *(one(i, c) for i, c in enumerate(conns)), return_exceptions=True
            )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return cast(list[T], results)

    def in_tx(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        return self.run(self.tx(fn))

    def db_snapshot(self) -> tuple[list[Any], ...]:
        async def go() -> tuple[list[Any], ...]:
            async with self.engine.connect() as conn:
                return await snapshot(conn)

        return self.run(go())

    def expect_balance(self, account: Account, after: ledger.Balance | None) -> None:
        funds = self.funds[account]
        assert after == ledger.Balance(funds.balance, funds.held)

    def settle_model(self, task_id: str, op: str) -> None:
        task = self.tasks[task_id]
        assert applies(op, task.status)
        _, status, code = SETTLEMENTS[op]
        funds = self.funds[task.account]
        funds.held -= task.price
        if op != "complete":
            funds.balance += task.price
        task.status, task.error_code = status, code

    def settle_once(self, task_id: str, op: str) -> None:
        fn = SETTLEMENTS[op][0]
        expected = applies(op, self.tasks[task_id].status)
        done = self.in_tx(lambda conn: fn(conn, task_id))
        assert done is expected, (op, self.tasks[task_id])
        if done:
            self.settle_model(task_id, op)

    def drive_to_storing(self, task_id: str) -> None:
        """Advance an active task to storing, one transaction per step (as the jobs do)."""
        task = self.tasks[task_id]
        while task.status in FORWARD:
            self.advance(task_id)

    @initialize(target=tasks_b, amount=st.integers(0, 1000), data=st.data())
    def first_task(self, amount: int, data: st.DataObject) -> Any:
        """Start with one funded task so the task rules are enabled from the first step."""
        account = ACCOUNTS[0]
        self.grant(account, amount + 1)
        return self.create(account, data.draw(st.integers(0, amount + 1), label="price"))

    # --- funding ----------------------------------------------------------------------

    @rule(account=st.sampled_from(ACCOUNTS), amount=st.integers(1, 1000))
    def grant(self, account: Account, amount: int) -> None:
        after = self.in_tx(lambda conn: ledger.grant(conn, *account, amount, "top-up"))
        self.funds.setdefault(account, Funds()).balance += amount
        self.expect_balance(account, after)

    @rule(account=st.sampled_from(ACCOUNTS), amount=st.integers(-1500, -1))
    def adjust(self, account: Account, amount: int) -> None:
        after = self.in_tx(lambda conn: ledger.grant(conn, *account, amount, "adjust"))
        funds = self.funds.setdefault(account, Funds())  # ensure_account ran either way
        if funds.balance >= -amount:
            funds.balance += amount
            self.expect_balance(account, after)
        else:
            assert after is None

    # --- create -----------------------------------------------------------------------

    @rule(target=tasks_b, account=st.sampled_from(ACCOUNTS), price=st.integers(0, 400))
    def create(self, account: Account, price: int) -> Any:
        self.counter += 1
        task_id = f"video_{self.counter}"

        async def go(conn: AsyncConnection) -> ledger.Balance | None:
            held = await ledger.hold(conn, *account, task_id, price)
            if held is not None:
                await insert_task(conn, task_values(task_id, account, price))
            return held

        after = self.in_tx(go)
        funds = self.funds.get(account)
        if funds is None or funds.balance < price:
            assert after is None
            # Still a bundle member (a task that does not exist): how many ids the bundle
            # holds must not depend on earlier outcomes, or failures cannot be replayed.
            self.tasks[task_id] = TaskModel(account, price, None)
            return task_id
        funds.balance -= price
        funds.held += price
        self.expect_balance(account, after)
        self.tasks[task_id] = TaskModel(account, price)
        return task_id

    @rule(
        target=tasks_b,
        account=st.sampled_from(ACCOUNTS),
        price_a=st.integers(0, 400),
        price_b=st.integers(0, 400),
    )
    def create_concurrently(self, account: Account, price_a: int, price_b: int) -> Any:
        """Two creates of one user at once: together they may not overspend the balance."""
        ids = []
        for _ in range(2):
            self.counter += 1
            ids.append(f"video_{self.counter}")

        def create(task_id: str, price: int) -> Callable[[AsyncConnection], Awaitable[bool]]:
            async def go(conn: AsyncConnection) -> bool:
                if await ledger.hold(conn, *account, task_id, price) is None:
                    return False
                await insert_task(conn, task_values(task_id, account, price))
                return True

            return go

        done = self.run(self.concurrently(create(ids[0], price_a), create(ids[1], price_b)))
        funds = self.funds.get(account)
        balance = funds.balance if funds else None

        def serial(first: int, second: int) -> list[bool]:
            if balance is None:
                return [False, False]
            ok_first = balance >= first
            ok_second = balance - (first if ok_first else 0) >= second
            return [ok_first, ok_second]

        # The database serialised them in the order they took the write lock: a, then b.
        assert done == serial(price_a, price_b), (balance, price_a, price_b, done)
        for task_id, price, ok in zip(ids, (price_a, price_b), done, strict=True):
            self.tasks[task_id] = TaskModel(account, price, TaskStatus.QUEUED if ok else None)
            if ok:
                assert funds is not None
                funds.balance -= price
                funds.held += price
        event(f"concurrent creates: {sum(done)} succeeded")
        # Both ids, created or not: the bundle's size must not depend on outcomes
        # (hypothesis needs a reproducible draw sequence to shrink and replay).
        return multiple(*ids)

    # --- forward transitions ----------------------------------------------------------

    @rule(task_id=tasks_b)
    def advance(self, task_id: str) -> None:
        task = self.tasks[task_id]
        nxt = FORWARD.get(task.status) if task.status is not None else None
        if nxt is None:  # storing, terminal or never created: stale forward steps do nothing
            before = self.db_snapshot()

            async def stale(conn: AsyncConnection) -> list[Any]:
                return [await transition(conn, task_id, [s], n) for s, n in FORWARD.items()]

            assert self.in_tx(stale) == [None] * len(FORWARD)
            assert self.db_snapshot() == before
            return
        current = task.status
        assert current is not None
        moved = self.in_tx(lambda conn: transition(conn, task_id, [current], nxt))
        assert moved is not None
        assert (moved.client_id, moved.user, moved.price) == (*task.account, task.price)
        task.status = nxt

    # --- settlements ------------------------------------------------------------------

    @rule(task_id=tasks_b, op=OPS)
    def settle(self, task_id: str, op: str) -> None:
        self.settle_once(task_id, op)

    @rule(task_id=tasks_b, op=OPS, to_storing=st.booleans())
    def settle_twice(self, task_id: str, op: str, to_storing: bool) -> None:
        """At-least-once delivery: the same settlement job runs twice in sequence."""
        if to_storing:
            self.drive_to_storing(task_id)
        self.settle_once(task_id, op)
        before = self.db_snapshot()
        fn = SETTLEMENTS[op][0]
        assert self.in_tx(lambda conn: fn(conn, task_id)) is False
        assert self.db_snapshot() == before

    @rule(task_id=tasks_b, op_a=OPS, op_b=OPS, to_storing=st.booleans())
    def settle_concurrently(self, task_id: str, op_a: str, op_b: str, to_storing: bool) -> None:
        """Two deliveries (same or different settlement) on two connections at once."""
        if to_storing:
            self.drive_to_storing(task_id)
        self.race(task_id, op_a, op_b)

    @rule(task_id=tasks_b, complete_first=st.booleans())
    def race_complete_cancel(self, task_id: str, complete_first: bool) -> None:
        """The store job completes while the user cancels the same storing task."""
        self.drive_to_storing(task_id)
        ops = ("complete", "cancel") if complete_first else ("cancel", "complete")
        self.race(task_id, *ops)

    def race(self, task_id: str, op_a: str, op_b: str) -> None:
        status = self.tasks[task_id].status
        fa, fb = SETTLEMENTS[op_a][0], SETTLEMENTS[op_b][0]

        results = self.run(
            self.concurrently(lambda conn: fa(conn, task_id), lambda conn: fb(conn, task_id))
        )
        winners = [op for op, done in zip((op_a, op_b), results, strict=True) if done]
        # Exactly one wins: the first writer whose settlement applies; the other no-ops.
        first = next((op for op in (op_a, op_b) if applies(op, status)), None)
        assert winners == ([first] if first else []), (status, op_a, op_b, results)
        if winners:
            self.settle_model(task_id, winners[0])
        event(f"race {op_a}/{op_b} on {status}: {winners[0] if winners else 'none'} won")

    # --- crashes mid-transaction ------------------------------------------------------

    @rule(
        task_id=tasks_b,
        op=OPS,
        point=st.sampled_from(["after_transition", "after_ledger", "after_settlement"]),
        to_storing=st.booleans(),
    )
    def crash_settlement(self, task_id: str, op: str, point: str, to_storing: bool) -> None:
        """A settlement that dies before commit leaves no trace (status, entry, account)."""
        if to_storing:
            self.drive_to_storing(task_id)
        fn, status, code = SETTLEMENTS[op]
        expected = [TaskStatus.STORING] if op == "complete" else list(ACTIVE)
        before = self.db_snapshot()

        async def go(conn: AsyncConnection) -> None:
            if point == "after_settlement":
                await fn(conn, task_id)
                raise Crash
            moved = await transition(conn, task_id, expected, status, error_code=code)
            if point == "after_ledger" and moved is not None:
                move = ledger.capture if op == "complete" else ledger.release
                await move(conn, moved.client_id, moved.user, task_id, moved.price)
            raise Crash

        with pytest.raises(Crash):
            self.in_tx(go)
        assert self.db_snapshot() == before

    @rule(
        account=st.sampled_from(ACCOUNTS),
        price=st.integers(0, 400),
        with_row=st.booleans(),
    )
    def crash_create(self, account: Account, price: int, with_row: bool) -> None:
        """A create that dies after its hold (and maybe its task row) leaves no trace."""
        self.counter += 1
        task_id = f"video_{self.counter}"
        before = self.db_snapshot()

        async def go(conn: AsyncConnection) -> None:
            held = await ledger.hold(conn, *account, task_id, price)
            if held is not None and with_row:
                await insert_task(conn, task_values(task_id, account, price))
            raise Crash

        with pytest.raises(Crash):
            self.in_tx(go)
        assert self.db_snapshot() == before

    @precondition(lambda self: bool(self.funds))
    @rule(data=st.data(), amount=st.integers(1, 1000))
    def crash_grant(self, data: st.DataObject, amount: int) -> None:
        account = data.draw(st.sampled_from(sorted(self.funds)))
        before = self.db_snapshot()

        async def go(conn: AsyncConnection) -> None:
            await ledger.grant(conn, *account, amount, "lost")
            raise Crash

        with pytest.raises(Crash):
            self.in_tx(go)
        assert self.db_snapshot() == before

    # --- invariants -------------------------------------------------------------------

    @invariant()
    def database_matches_model(self) -> None:
        state = self.run(self.read_state())
        assert state.violations == []
        assert state.double_settled == []
        db_funds = {(a.client_id, a.user): Funds(a.balance, a.held) for a in state.accounts}
        assert db_funds == self.funds
        db_tasks = {t.id: (TaskStatus(t.status), t.error_code) for t in state.tasks}
        live = {k: t for k, t in self.tasks.items() if t.status is not None}
        assert db_tasks == {k: (t.status, t.error_code) for k, t in live.items()}
        # The newest entry of each account records the account as it is now.
        for e in state.latest_entries:
            assert Funds(e.balance_after, e.held_after) == self.funds[(e.client_id, e.user)]
        # Exactly one outbox event per ended task, of its kind; its deliveries written once.
        expected_events = {
            (k, EVENT_TYPES[t.status], 1 if has_webhook(k) else 0)
            for k, t in live.items()
            if t.status in EVENT_TYPES
        }
        assert sorted(state.events) == sorted(expected_events)

    async def read_state(self) -> DbState:
        async with self.engine.connect() as conn:
            last_id = (
                select(func.max(entries.c.id))
                .group_by(entries.c.client_id, entries.c.user)
                .scalar_subquery()
            )
            per_event = (
                select(func.count()).where(deliveries.c.event_id == events.c.id).scalar_subquery()
            )
            return DbState(
                violations=await ledger_violations(conn),
                accounts=list((await conn.execute(select(accounts))).all()),
                tasks=list(
                    (
                        await conn.execute(select(tasks.c.id, tasks.c.status, tasks.c.error_code))
                    ).all()
                ),
                double_settled=list(
                    (
                        await conn.execute(
                            select(entries.c.task_id, func.count())
                            .where(entries.c.kind.in_([EntryKind.CAPTURE, EntryKind.RELEASE]))
                            .group_by(entries.c.task_id)
                            .having(func.count() > 1)
                        )
                    ).all()
                ),
                latest_entries=list(
                    (
                        await conn.execute(
                            select(
                                entries.c.client_id,
                                entries.c.user,
                                entries.c.balance_after,
                                entries.c.held_after,
                            ).where(entries.c.id.in_(last_id))
                        )
                    ).all()
                ),
                events=[
                    (r.task_id, r.type, r.n)
                    for r in await conn.execute(
                        select(events.c.task_id, events.c.type, per_event.label("n"))
                    )
                ],
            )


LedgerMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
)
TestLedgerMachine = pytest.mark.slow(LedgerMachine.TestCase)


# --- the database itself refuses a second settlement ---------------------------------


@pytest.mark.parametrize(
    ("first", "second", "second_settles"),
    [
        (EntryKind.CAPTURE, EntryKind.RELEASE, True),
        (EntryKind.RELEASE, EntryKind.CAPTURE, True),
        (EntryKind.RELEASE, EntryKind.RELEASE, True),
        # Leaving ``settles`` empty to dodge its UNIQUE is refused by the CHECK instead.
        (EntryKind.CAPTURE, EntryKind.RELEASE, False),
    ],
)
def test_database_refuses_a_second_settlement(
    tmp_path: Path, first: EntryKind, second: EntryKind, second_settles: bool
) -> None:
    def entry(kind: EntryKind, amount: int, balance: int, held: int, settles: bool) -> Any:
        return insert(entries).values(
            client_id="acme",
            user="alice",
            task_id="video_1",
            settles="video_1" if settles else None,
            kind=kind,
            amount=amount,
            balance_after=balance,
            held_after=held,
            at=utcnow(),
        )

    async def scenario() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
        try:
            await upgrade(engine)
            async with engine.begin() as conn:
                await conn.execute(entry(EntryKind.HOLD, 100, 0, 100, False))
                await conn.execute(entry(first, 100, 0, 0, True))
            with pytest.raises(IntegrityError):
                async with engine.begin() as conn:
                    await conn.execute(entry(second, 100, 100, 0, second_settles))
            async with engine.connect() as conn:
                kinds = (
                    await conn.execute(select(entries.c.kind).where(entries.c.task_id == "video_1"))
                ).scalars()
                assert sorted(kinds) == sorted([EntryKind.HOLD, first])
        finally:
            await engine.dispose()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
