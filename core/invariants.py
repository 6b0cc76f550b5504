"""Ledger invariants (docs/architecture.md, "Ledger"), checked by the tests after every
scenario and by the chaos run."""

from __future__ import annotations

from collections import Counter, defaultdict

from sqlalchemy.ext.asyncio import AsyncConnection

from core.repo import credits, tasks
from schemas.status import TERMINAL, EntryKind, TaskStatus

_SETTLES_AS = {
    TaskStatus.COMPLETED: EntryKind.CAPTURE,
    TaskStatus.FAILED: EntryKind.RELEASE,
    TaskStatus.CANCELLED: EntryKind.RELEASE,
}


async def ledger_violations(conn: AsyncConnection) -> list[str]:
    """Every broken invariant, as readable lines; empty when the ledger is sound."""
    problems: list[str] = []
    task_rows = await tasks.ledger_views(conn)
    entry_rows = await credits.all_entries(conn)
    account_rows = await credits.all_accounts(conn)

    per_task: dict[str, Counter[str]] = defaultdict(Counter)
    sums: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for e in entry_rows:
        if e.task_id is not None:
            per_task[e.task_id][e.kind] += 1
        sums[(e.client_id, e.user)][e.kind] += e.amount

    held_expected: Counter[tuple[str, str]] = Counter()
    active_expected: Counter[tuple[str, str]] = Counter()
    for t in task_rows:
        kinds = per_task.get(t.id, Counter())
        status = t.status
        if kinds[EntryKind.HOLD] != 1:
            problems.append(f"task {t.id} has {kinds[EntryKind.HOLD]} holds")
        settlements = kinds[EntryKind.CAPTURE] + kinds[EntryKind.RELEASE]
        if status in TERMINAL:
            if settlements != 1 or kinds[_SETTLES_AS[status]] != 1:
                problems.append(f"task {t.id} ({status}) settled as {dict(kinds)}")
        else:
            held_expected[(t.client_id, t.user)] += t.price
            active_expected[(t.client_id, t.user)] += 1
            if settlements:
                problems.append(f"active task {t.id} ({status}) already settled: {dict(kinds)}")

    for a in account_rows:
        key = (a.client_id, a.user)
        s = sums.get(key, Counter())
        if a.balance < 0 or a.held < 0:
            problems.append(f"account {key} negative: balance={a.balance} held={a.held}")
        if a.held != held_expected[key]:
            problems.append(f"account {key} holds {a.held}, active tasks need {held_expected[key]}")
        if a.active_tasks != active_expected[key]:
            problems.append(
                f"account {key} counts {a.active_tasks} active tasks, has {active_expected[key]}"
            )
        funded = s[EntryKind.GRANT] + s[EntryKind.ADJUST]
        if funded != a.balance + a.held + s[EntryKind.CAPTURE]:
            problems.append(
                f"account {key}: grants+adjusts={funded} != balance {a.balance} + held {a.held}"
                f" + captures {s[EntryKind.CAPTURE]}"
            )
    return problems
