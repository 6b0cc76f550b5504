"""The API's scrape-time gauges over the database, on both backends: tasks by status, how
long the oldest task has been in its status, and the credits held (the alerts in
deploy/prometheus/alerts.yaml read them)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.repo.tables import tasks
from schemas.clock import utcnow
from service.metrics import TaskGauge
from tests.integration.conftest import BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def samples(gauge: TaskGauge) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in gauge.collect()
        for s in family.samples
    }


async def test_oldest_age_and_held_credits(acme: httpx.AsyncClient, engine: AsyncEngine) -> None:
    gauge = TaskGauge(engine)
    await gauge.refresh()
    empty = samples(gauge)
    assert empty[("google_video_credits_held", ())] == 0
    assert not [name for name, _ in empty if name == "google_video_tasks_oldest_age_seconds"]

    created = [(await acme.post("/v1/videos", json={"prompt": f"a fox {n}"})).json() for n in "ab"]
    assert all(video["status"] == "queued" for video in created), created
    # No worker runs here: both stay queued. One of them has waited ten minutes.
    async with engine.begin() as conn:
        long_ago = utcnow() - timedelta(minutes=10)
        await conn.execute(
            update(tasks).where(tasks.c.id == created[0]["id"]).values(updated_at=long_ago)
        )

    fresh = TaskGauge(engine)
    await fresh.refresh()
    found = samples(fresh)
    age = found[("google_video_tasks_oldest_age_seconds", (("status", "queued"),))]
    assert 600 <= age < 660
    price = sum(video["price"] for video in created)
    assert price > 0
    assert found[("google_video_credits_held", ())] == price
    model = created[0]["model"]
    assert found[("google_video_tasks", (("model", model), ("status", "queued")))] == 2
