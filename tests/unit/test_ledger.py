"""The credits ledger, terminal settlements and the invariant checker, on migrated SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core import settlement
from core.db import make_engine
from core.invariants import ledger_violations
from core.migrate import upgrade
from core.repo import credits as ledger
from core.repo.tables import accounts, entries, tasks
from schemas.clock import utcnow
from schemas.problems import FailureCode
from schemas.status import TaskStatus

CLIENT, USER = "acme", "alice"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    await upgrade(engine)
    yield engine
    await engine.dispose()


async def add_task(
    conn: AsyncConnection, task_id: str, *, price: int = 100, status: TaskStatus = TaskStatus.QUEUED
) -> None:
    now = utcnow()
    await conn.execute(
        insert(tasks).values(
            id=task_id,
            client_id=CLIENT,
            user=USER,
            task_type="text_to_video",
            status=str(status),
            model="veo3",
            prompt="p",
            images=[],
            input_refs=[],
            price=price,
            request_snapshot={},
            upstream_response={},
            metadata={},
            created_at=now,
            updated_at=now,
        )
    )


async def funded_task(
    engine: AsyncEngine,
    task_id: str,
    *,
    grant: int = 1000,
    price: int = 100,
    status: TaskStatus = TaskStatus.QUEUED,
) -> None:
    """A granted account plus a task holding its price (as a create does)."""
    async with engine.begin() as conn:
        if grant:
            await ledger.grant(conn, CLIENT, USER, grant, "test")
        await add_task(conn, task_id, price=price, status=status)
        assert await ledger.hold(conn, CLIENT, USER, task_id, price) is not None


async def kinds_of(engine: AsyncEngine, task_id: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(entries.c.kind).where(entries.c.task_id == task_id).order_by(entries.c.id)
        )
        return [r.kind for r in rows]


async def violations(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return await ledger_violations(conn)


async def balance(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        b = await ledger.balance_of(conn, CLIENT, USER)
    return b.balance, b.held


async def set_status(engine: AsyncEngine, task_id: str, status: TaskStatus) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(tasks).where(tasks.c.id == task_id).values(status=str(status)))


# --- ledger ---------------------------------------------------------------------------


async def test_grant_creates_account_and_entry(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        after = await ledger.grant(conn, CLIENT, USER, 500, "welcome")
    assert after == ledger.Balance(500, 0)
    async with engine.connect() as conn:
        row = (await conn.execute(select(entries))).one()
    assert (row.kind, row.amount, row.balance_after, row.reason) == ("grant", 500, 500, "welcome")
    assert await violations(engine) == []


async def test_negative_grant_is_an_adjust_and_never_goes_below_zero(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await ledger.grant(conn, CLIENT, USER, 100, "t")
        assert await ledger.grant(conn, CLIENT, USER, -101, "too much") is None
        assert await ledger.grant(conn, CLIENT, USER, -40, "fix") == ledger.Balance(60, 0)
    async with engine.connect() as conn:
        kinds = [r.kind for r in await conn.execute(select(entries.c.kind).order_by(entries.c.id))]
    assert kinds == ["grant", "adjust"]
    assert await violations(engine) == []


async def test_hold_moves_price_from_balance_to_held(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1", grant=250, price=100)
    assert await balance(engine) == (150, 100)
    assert await kinds_of(engine, "t1") == ["hold"]
    assert await violations(engine) == []


async def test_hold_with_short_balance_changes_nothing(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await ledger.grant(conn, CLIENT, USER, 99, "t")
        assert await ledger.hold(conn, CLIENT, USER, "t1", 100) is None
    assert await balance(engine) == (99, 0)
    assert await kinds_of(engine, "t1") == []


async def test_hold_without_account_returns_none(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        assert await ledger.hold(conn, CLIENT, "nobody", "t1", 1) is None
        assert await ledger.balance_of(conn, CLIENT, "nobody") == ledger.Balance(0, 0)


async def test_capture_consumes_the_hold(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1", grant=250, price=100)
    async with engine.begin() as conn:
        assert await ledger.capture(conn, CLIENT, USER, "t1", 100) == ledger.Balance(150, 0)
    await set_status(engine, "t1", TaskStatus.COMPLETED)
    assert await kinds_of(engine, "t1") == ["hold", "capture"]
    assert await violations(engine) == []


async def test_release_returns_the_hold_to_balance(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1", grant=250, price=100)
    async with engine.begin() as conn:
        assert await ledger.release(conn, CLIENT, USER, "t1", 100) == ledger.Balance(250, 0)
    await set_status(engine, "t1", TaskStatus.FAILED)
    assert await kinds_of(engine, "t1") == ["hold", "release"]
    assert await violations(engine) == []


async def test_capture_of_more_than_held_raises_ledger_error(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1", price=100)
    async with engine.begin() as conn:
        with pytest.raises(ledger.LedgerError):
            await ledger.capture(conn, CLIENT, USER, "t1", 101)
    assert await balance(engine) == (900, 100)


async def test_second_capture_of_same_task_violates_unique_constraint(engine: AsyncEngine) -> None:
    # Two holds, so the held-amount guard alone would let a second capture through.
    await funded_task(engine, "t1", price=100)
    await funded_task(engine, "t2", grant=0, price=100)
    async with engine.begin() as conn:
        await ledger.capture(conn, CLIENT, USER, "t1", 100)
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await ledger.capture(conn, CLIENT, USER, "t1", 100)
    assert await kinds_of(engine, "t1") == ["hold", "capture"]
    assert await balance(engine) == (800, 100)


async def test_capture_after_release_violates_unique_settles(engine: AsyncEngine) -> None:
    """(task, kind) differs here; only UNIQUE(settles) stops the second settlement."""
    await funded_task(engine, "t1", price=100)
    await funded_task(engine, "t2", grant=0, price=100)
    async with engine.begin() as conn:
        await ledger.release(conn, CLIENT, USER, "t1", 100)
    with pytest.raises(IntegrityError, match="settles"):
        async with engine.begin() as conn:
            await ledger.capture(conn, CLIENT, USER, "t1", 100)
    assert await kinds_of(engine, "t1") == ["hold", "release"]
    assert await balance(engine) == (900, 100)


async def test_second_hold_for_same_task_violates_unique_constraint(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1", price=100)
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await ledger.hold(conn, CLIENT, USER, "t1", 100)
    assert await balance(engine) == (900, 100)


async def test_entry_kind_outside_the_enum_is_refused_by_the_database(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(
                insert(entries).values(
                    client_id=CLIENT,
                    user=USER,
                    kind="gift",
                    amount=1,
                    balance_after=1,
                    held_after=0,
                    at=utcnow(),
                )
            )


async def test_negative_balance_is_refused_by_the_database(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await ledger.grant(conn, CLIENT, USER, 10, "t")
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(update(accounts).values(balance=-1))


# --- settlement -----------------------------------------------------------------------


async def test_complete_moves_storing_to_completed_and_captures(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1", status=TaskStatus.STORING)
    async with engine.begin() as conn:
        assert await settlement.complete(conn, "t1", video_key="videos/t1/video.mp4")
    async with engine.connect() as conn:
        row = (await conn.execute(select(tasks).where(tasks.c.id == "t1"))).one()
    assert (row.status, row.progress, row.video_key) == ("completed", 100, "videos/t1/video.mp4")
    assert row.completed_at is not None and row.next_attempt_at is None
    assert await kinds_of(engine, "t1") == ["hold", "capture"]
    assert await balance(engine) == (900, 0)
    assert await violations(engine) == []


async def test_complete_from_a_non_storing_state_does_nothing(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1", status=TaskStatus.RUNNING)
    async with engine.begin() as conn:
        assert not await settlement.complete(conn, "t1")
    assert await kinds_of(engine, "t1") == ["hold"]
    assert await violations(engine) == []


async def test_fail_releases_and_records_code(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1", status=TaskStatus.RUNNING)
    async with engine.begin() as conn:
        assert await settlement.fail(conn, "t1", FailureCode.UPSTREAM_FAILED, "nope")
    async with engine.connect() as conn:
        row = (await conn.execute(select(tasks).where(tasks.c.id == "t1"))).one()
    assert (row.status, row.error_code, row.error_message) == ("failed", "upstream_failed", "nope")
    assert await balance(engine) == (1000, 0)
    assert await violations(engine) == []


async def test_cancel_releases_with_code_cancelled(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1")
    async with engine.begin() as conn:
        assert await settlement.cancel(conn, "t1")
    async with engine.connect() as conn:
        row = (await conn.execute(select(tasks).where(tasks.c.id == "t1"))).one()
    assert (row.status, row.error_code) == ("cancelled", "cancelled")
    assert await kinds_of(engine, "t1") == ["hold", "release"]
    assert await violations(engine) == []


async def test_losing_settlement_race_does_nothing(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1", status=TaskStatus.STORING)
    async with engine.begin() as conn:
        assert await settlement.complete(conn, "t1")
    async with engine.begin() as conn:
        assert not await settlement.cancel(conn, "t1")
        assert not await settlement.fail(conn, "t1", FailureCode.TIMEOUT, "late")
        assert not await settlement.complete(conn, "t1")
    assert await kinds_of(engine, "t1") == ["hold", "capture"]
    assert await violations(engine) == []


async def test_fail_only_from_expected_states(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1", status=TaskStatus.RUNNING)
    async with engine.begin() as conn:
        assert not await settlement.fail(
            conn, "t1", FailureCode.TIMEOUT, "x", expected=[TaskStatus.QUEUED]
        )
    assert await kinds_of(engine, "t1") == ["hold"]


# --- invariants -----------------------------------------------------------------------


async def test_sound_ledger_with_mixed_outcomes_has_no_violations(engine: AsyncEngine) -> None:
    await funded_task(engine, "a", status=TaskStatus.STORING)
    await funded_task(engine, "b", grant=0)
    await funded_task(engine, "c", grant=0, status=TaskStatus.RUNNING)
    async with engine.begin() as conn:
        await settlement.complete(conn, "a")
        await settlement.cancel(conn, "b")
        await ledger.grant(conn, CLIENT, USER, -50, "adjust")
    assert await balance(engine) == (750, 100)
    assert await violations(engine) == []


async def broken(engine: AsyncEngine, statement: Any) -> list[str]:
    async with engine.begin() as conn:
        await conn.execute(statement)
    return await violations(engine)


async def test_invariants_detect_held_changed_behind_the_ledger(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1")
    problems = await broken(engine, update(accounts).values(held=accounts.c.held + 1))
    assert any("holds 101, active tasks need 100" in p for p in problems), problems


async def test_invariants_detect_balance_changed_behind_the_ledger(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1")
    problems = await broken(engine, update(accounts).values(balance=accounts.c.balance + 5))
    assert any("grants+adjusts=1000" in p for p in problems), problems


async def test_invariants_detect_terminal_task_without_settlement(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1")
    problems = await broken(engine, update(tasks).values(status="completed"))
    assert any("task t1 (completed) settled as" in p for p in problems), problems


async def test_invariants_detect_task_settled_the_wrong_way(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1", status=TaskStatus.STORING)
    async with engine.begin() as conn:
        await settlement.complete(conn, "t1")
    problems = await broken(engine, update(tasks).values(status="failed"))
    assert any("task t1 (failed) settled as" in p for p in problems), problems


async def test_invariants_detect_task_without_hold(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await add_task(conn, "t1")
    assert await violations(engine) == ["task t1 has 0 holds"]


async def test_invariants_detect_active_task_already_settled(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1", status=TaskStatus.STORING)
    async with engine.begin() as conn:
        await settlement.complete(conn, "t1")
    problems = await broken(engine, update(tasks).values(status="running"))
    assert any("active task t1 (running) already settled" in p for p in problems), problems


# --- active task counter ----------------------------------------------------------------


async def active_tasks(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await ledger.standing_of(conn, CLIENT, USER)).active_tasks


async def test_holds_count_active_tasks_and_settlements_uncount_them(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1")
    await funded_task(engine, "t2", grant=0)
    assert await active_tasks(engine) == 2
    await set_status(engine, "t1", TaskStatus.STORING)
    async with engine.begin() as conn:
        assert await settlement.complete(conn, "t1") is not None
        assert await settlement.cancel(conn, "t2") is not None
    assert await active_tasks(engine) == 0
    assert await violations(engine) == []


async def test_a_hold_past_the_active_limit_changes_nothing(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1")
    async with engine.begin() as conn:
        assert await ledger.hold(conn, CLIENT, USER, "t2", 100, max_active=1) is None
    assert (await balance(engine), await active_tasks(engine)) == ((900, 100), 1)


async def test_invariants_detect_a_drifted_active_count(engine: AsyncEngine) -> None:
    await funded_task(engine, "t1")
    async with engine.begin() as conn:
        await conn.execute(update(accounts).values(active_tasks=3))
    assert await violations(engine) == [
        f"account ('{CLIENT}', '{USER}') counts 3 active tasks, has 1"
    ]


async def test_the_migration_counts_the_active_tasks_already_there(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'before.db'}")
    try:
        await upgrade(engine, "0009")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    'INSERT INTO accounts (client_id, "user", balance, held, updated_at)'
                    " VALUES (:c, :u, 0, 0, CURRENT_TIMESTAMP),"
                    " (:c, 'bob', 0, 0, CURRENT_TIMESTAMP)"
                ),
                {"c": CLIENT, "u": USER},
            )
            for task_id, status in (
                ("t1", TaskStatus.QUEUED),
                ("t2", TaskStatus.RUNNING),
                ("t3", TaskStatus.COMPLETED),
            ):
                await add_task(conn, task_id, status=status)
        await upgrade(engine)
        async with engine.connect() as conn:
            counts = {a.user: a.active_tasks for a in await ledger.all_accounts(conn)}
        assert counts == {USER: 2, "bob": 0}
    finally:
        await engine.dispose()
