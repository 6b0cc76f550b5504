"""``task_activity`` retention (``core.repo.activity.purge_before``, run hourly by the
worker's ``purge_activity``), on PostgreSQL and SQLite: what is older than the edge goes
in batches, what is newer stays, whatever the batch size."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import autocommit
from core.repo.activity import purge_before
from core.repo.tables import activity
from schemas.clock import utcnow
from tests.integration.conftest import BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _ages(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(activity.c.detail).order_by(activity.c.id))
    return [int(detail["age"]) for detail in rows.scalars()]


@pytest.mark.parametrize("batch", [1, 7, 10_000])
async def test_rows_older_than_the_edge_go_and_newer_ones_stay(
    engine: AsyncEngine, batch: int
) -> None:
    now = utcnow()
    async with autocommit(engine) as conn:
        assert await purge_before(conn, now, batch=batch) == 0  # an empty table
    ages = [60 - day for day in range(0, 60, 2)]  # days old, oldest first (as written)
    rows = [
        {
            "task_id": f"video_{age}",
            "at": now - timedelta(days=age),
            "kind": kind,
            "detail": {"age": age},
        }
        for age in ages
        for kind in ("submit", "poll", "status")
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(activity), rows)
    async with autocommit(engine) as conn:
        purged = await purge_before(conn, now - timedelta(days=30), batch=batch)
    assert purged == 3 * sum(1 for age in ages if age > 30)
    assert sorted(set(await _ages(engine))) == [age for age in sorted(ages) if age <= 30]
    # Everything older: the table empties, and purging again finds nothing.
    async with autocommit(engine) as conn:
        assert await purge_before(conn, now + timedelta(seconds=1), batch=batch) > 0
        assert await purge_before(conn, now + timedelta(seconds=1), batch=batch) == 0
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(activity))).scalar() == 0
