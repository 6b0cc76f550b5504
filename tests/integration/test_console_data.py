"""The operator console's data layer on both databases: a task's timeline, the video
search, an account's ledger and the health numbers (set against ``/metrics``).

Videos go through the in-process API, a real worker process and the simulator; the search
needs no worker (queued and cancelled tasks are enough).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from core.health_numbers import health_numbers
from core.queue_codec import ARQ_CODEC
from core.repo.activity import Calls, first_id_since, upstream_calls
from core.repo.credits import account_ledger
from core.repo.tables import activity as activity_table
from core.repo.tables import tasks
from core.repo.tasks import TaskFilter, model_providers, search
from core.repo.timeline import TimelineEntry, timeline
from schemas.clock import utcnow
from schemas.settings import Settings
from schemas.status import PublicStatus, TaskStatus
from tests.eventually import eventually
from tests.integration.conftest import ADMIN_KEY, BACKENDS
from tests.integration.e2e.helpers import create, finished
from tests.integration.receiver import Receiver
from tests.integration.stack import SIM_KEY, Stack, base_env, simulator
from worker.metrics import QueueGauges

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with simulator(tmp_path_factory.mktemp("console-sim")) as url:
        yield url


@pytest.fixture
def settings(engine: AsyncEngine, redis_url: str, tmp_path: Path, sim_url: str) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=engine.url.render_as_string(hide_password=False),
        redis_url=redis_url,
        storage_url=(tmp_path / "storage").as_uri(),
        admin_key=ADMIN_KEY,
        api_key_cache_seconds=0,
        public_url="http://testserver",
        egress_allow=["127.0.0.0/8"],
        egress_allow_http=True,
        upstream_kind="simulator",
        upstream_base_url=sim_url,
        upstream_api_key=SIM_KEY,
    )


@pytest.fixture
def worker(app: Starlette, settings: Settings, sim_url: str, tmp_path: Path) -> Iterator[Stack]:
    """One worker process on the test's database (started after the API migrated and
    configured it)."""
    storage = {"GOOGLE_VIDEO_STORAGE_URL": settings.storage_url}
    env = base_env(settings.database_url, settings.redis_url, storage, sim_url)
    stack = Stack(env, sim_url, tmp_path)
    stack.start_worker()
    try:
        yield stack
    finally:
        stack.stop_workers()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


def _is_subsequence(wanted: list[str], seen: list[str]) -> bool:
    rest = iter(seen)
    return all(any(label == w for label in rest) for w in wanted)


def _labels(entries: list[TimelineEntry]) -> list[str]:
    """Each entry as ``source`` or ``source:title word`` for the ones the order names."""
    found = []
    for entry in entries:
        if entry.source in ("status", "ledger", "task"):
            found.append(f"{entry.source}:{entry.title.split()[0].rstrip(':')}")
        else:
            found.append(entry.source)
    return found


async def _delivered(engine: AsyncEngine, task_id: str) -> list[TimelineEntry]:
    async def read() -> list[TimelineEntry]:
        async with engine.connect() as conn:
            return await timeline(conn, task_id)

    return await eventually(
        read,
        15,
        until=lambda found: any(e.source == "delivery" and e.ok for e in found),
        what="a delivery attempt in the timeline",
    )


async def scrape(app: Starlette) -> Samples:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _of(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


async def test_a_video_life_its_ledger_and_the_health_numbers(
    app: Starlette,
    engine: AsyncEngine,
    settings: Settings,
    acme: httpx.AsyncClient,
    worker: Stack,
    receiver: Receiver,
) -> None:
    done = await create(acme, "a fox [sim:duration=1]", webhook_url=receiver.url())
    stopped = await create(acme, "a slow owl [sim:duration=60]")
    lost = await create(acme, "a lost cat [sim:duration=1] [sim:fail=no cats today]")
    assert (await acme.post(f"/v1/videos/{stopped['id']}/cancel")).status_code == 200
    video = await finished(acme, done["id"])
    assert video["status"] == "completed", video

    # A completed video: created, its submit, the polls, the store and the settlement,
    # then its webhook event and the delivery attempt, in this order.
    life = await _delivered(engine, done["id"])
    labels = _labels(life)
    wanted = [
        "task:created",
        "status:submitting",
        "submit",
        "status:running",
        "poll",
        "status:storing",
        "store",
        "status:completed",
        "event",
        "delivery",
    ]
    assert _is_subsequence(wanted, labels), labels
    assert _is_subsequence(["ledger:hold", "ledger:capture"], labels), labels
    assert "ledger:release" not in labels
    assert [e.at for e in life[1:]] == sorted(e.at for e in life[1:])
    submit = next(e for e in life if e.source == "submit")
    assert submit.ok and submit.detail["upstream_task_id"] in submit.title
    assert submit.detail["route"] == "simulator" and submit.detail["latency_ms"] >= 0
    polls = [e for e in life if e.source == "poll"]
    assert polls and all(e.ok for e in polls) and polls[-1].detail["state"]
    stored = next(e for e in life if e.source == "store")
    assert stored.detail["video_size"] > 0 and len(stored.detail["video_sha256"]) == 64
    delivery = next(e for e in life if e.source == "delivery")
    assert delivery.detail["status_code"] == 200 and delivery.detail["url"] == receiver.url()

    # One the upstream failed: the poll that saw it (not ok), then the failed status.
    assert (await finished(acme, lost["id"]))["status"] == "failed"
    async with engine.connect() as conn:
        failed = await timeline(conn, lost["id"])
    assert _is_subsequence(["poll", "status:failed"], _labels(failed)), _labels(failed)
    seen = [e for e in failed if e.source == "poll"][-1]
    assert seen.ok is False and seen.detail["state"] == "failed", seen
    assert _is_subsequence(["ledger:hold", "ledger:release"], _labels(failed))

    # A cancelled one: its hold released, no capture.
    async with engine.connect() as conn:
        cancelled = _labels(await timeline(conn, stopped["id"]))
        assert await timeline(conn, "video_nosuchtask") == []
    assert _is_subsequence(["task:created", "ledger:hold", "ledger:release"], cancelled)
    assert "status:cancelled" in cancelled and "ledger:capture" not in cancelled

    # The account's ledger, newest first, each entry naming its task; paged by id.
    async with engine.connect() as conn:
        lines = await account_ledger(conn, "acme", "acme", before_id=None, limit=10)
        second = await account_ledger(conn, "acme", "acme", before_id=lines[1].id, limit=10)
    assert [line.id for line in lines] == sorted((line.id for line in lines), reverse=True)
    kinds = {(line.kind, line.task_id) for line in lines}
    assert {("hold", done["id"]), ("capture", done["id"])} <= kinds
    assert {("hold", stopped["id"]), ("release", stopped["id"])} <= kinds
    assert {("hold", lost["id"]), ("release", lost["id"])} <= kinds
    assert lines[-1].kind == "grant" and lines[-1].task_id is None
    assert lines[-1].task_model is None and lines[-1].reason == "test"
    capture = next(line for line in lines if line.kind == "capture")
    assert capture.task_model == done["model"] and capture.task_status == "completed"
    assert capture.amount == done["price"]
    assert [line.id for line in second] == [line.id for line in lines[2:]]

    # The health numbers and /metrics, read with the worker gone (killed: nothing of it is
    # needed any more, and a drain would wait) so that the queue holds still.
    worker.stop_workers(signal.SIGKILL)
    numbers = await health_numbers(engine, app.state.ctx.queue, settings)
    samples = await scrape(app)
    shown = {
        dict(labels)["status"]: v for labels, v in _of(samples, "google_video_tasks").items() if v
    }
    assert numbers.tasks_by_status == shown == {}
    assert numbers.running == 0
    pending = samples[("google_video_webhook_deliveries_pending", frozenset())]
    assert numbers.webhook_pending == pending == 0
    lag = {
        dict(k)["quantile"]: v
        for k, v in _of(samples, "google_video_recent_completion_lag_seconds").items()
    }
    assert numbers.recent.lag_count == 1
    assert lag == {str(q): v for q, v in numbers.recent.lag_quantiles.items()}
    assert set(lag) == {"0.5", "0.95"} and lag["0.5"] == lag["0.95"] >= 0
    ratio = {
        dict(k)["provider"]: v for k, v in _of(samples, "google_video_upstream_error_ratio").items()
    }
    assert ratio == {"simulator": numbers.recent.error_ratio("simulator")} == {"simulator": 0.0}
    assert numbers.recent.calls["simulator"].calls >= 2  # a submit and a poll at least

    redis = await create_pool(RedisSettings.from_dsn(settings.redis_url), **ARQ_CODEC)
    try:
        gauges = QueueGauges(redis)
        await gauges.refresh()
        queue = {f.name: f.samples[0].value for f in gauges.collect()}
    finally:
        await redis.aclose()
    again = await health_numbers(engine, app.state.ctx.queue, settings)
    # A deferred job may fall due between two reads: their sum is what cannot move.
    jobs = queue["google_video_queue_jobs_due"] + queue["google_video_queue_jobs_deferred"]
    assert jobs == again.queue.due + again.queue.deferred


async def _ids(engine: AsyncEngine, filters: TaskFilter, limit: int = 100) -> list[str]:
    async with engine.connect() as conn:
        return [task.id for task in await search(conn, filters, before=None, limit=limit)]


async def test_search_filters_narrow_and_pages_are_stable(
    app: Starlette,
    engine: AsyncEngine,
    acme: httpx.AsyncClient,
    globex: httpx.AsyncClient,
    grant: Any,
) -> None:
    await grant("acme", "bob", 1000)
    made = {
        "alice-fast": await create(acme, "one", user="acme", model="veo3-fast"),
        "alice-veo2": await create(acme, "two", user="acme", model="veo2-fast"),
        "bob": await create(acme, "three", user="bob", model="veo3-fast"),
        "globex": await create(globex, "four", model="veo3-fast"),
        "gemini": await create(acme, "five", user="acme", model="veo-3.1-fast-generate-preview"),
    }
    ids = {name: video["id"] for name, video in made.items()}
    newest_first = sorted(ids.values(), reverse=True)
    assert (await acme.post(f"/v1/videos/{ids['alice-veo2']}/cancel")).status_code == 200
    # One submitted on another route than its model's first: the recorded route decides.
    async with engine.begin() as conn:
        await conn.execute(
            update(tasks)
            .where(tasks.c.id == ids["bob"])
            .values(status="running", upstream_route="gemini:veo-3.0-fast-generate-001")
        )

    assert await _ids(engine, TaskFilter()) == newest_first
    assert set(await _ids(engine, TaskFilter(client_id="globex"))) == {ids["globex"]}
    assert set(await _ids(engine, TaskFilter(user="bob"))) == {ids["bob"]}
    acme_own = {ids["alice-fast"], ids["alice-veo2"], ids["gemini"]}
    assert set(await _ids(engine, TaskFilter(client_id="acme", user="acme"))) == acme_own
    assert set(await _ids(engine, TaskFilter(model="veo2-fast"))) == {ids["alice-veo2"]}
    # Public statuses as the API shows them; an internal one matches only itself.
    failed = TaskFilter(status=PublicStatus.FAILED)
    assert set(await _ids(engine, failed)) == {ids["alice-veo2"]}
    in_progress = TaskFilter(status=PublicStatus.IN_PROGRESS)
    assert set(await _ids(engine, in_progress)) == {ids["bob"]}
    assert await _ids(engine, TaskFilter(status=TaskStatus.FAILED)) == []
    assert set(await _ids(engine, TaskFilter(status=TaskStatus.CANCELLED))) == {ids["alice-veo2"]}
    queued = set(await _ids(engine, TaskFilter(status=PublicStatus.QUEUED)))
    assert queued == {ids["alice-fast"], ids["globex"], ids["gemini"]}

    config = await app.state.ctx.config.get()
    providers = model_providers(config.models, config.upstream_kind)
    on_gemini = TaskFilter(provider="gemini", model_providers=providers)
    assert set(await _ids(engine, on_gemini)) == {ids["bob"], ids["gemini"]}
    on_sim = TaskFilter(provider="simulator", model_providers=providers)
    assert set(await _ids(engine, on_sim)) == {ids["alice-fast"], ids["alice-veo2"], ids["globex"]}
    recorded_only = TaskFilter(provider="gemini")
    assert await _ids(engine, recorded_only) == [ids["bob"]]
    assert await _ids(engine, TaskFilter(provider="gem_ni", model_providers=providers)) == []

    now = utcnow()
    assert await _ids(engine, TaskFilter(created_from=now)) == []
    window = TaskFilter(created_from=now - timedelta(minutes=5), created_to=now)
    assert await _ids(engine, window) == newest_first
    assert await _ids(engine, TaskFilter(created_to=now - timedelta(minutes=5))) == []
    both = TaskFilter(client_id="acme", model="veo3-fast", status=PublicStatus.QUEUED)
    assert await _ids(engine, both) == [ids["alice-fast"]]

    # Pages of two: newest first, each after the last id of the previous, stable while a
    # new video arrives (it is newer than every cursor).
    pages: list[list[str]] = []
    before: str | None = None
    while True:
        async with engine.connect() as conn:
            page = [t.id for t in await search(conn, TaskFilter(), before=before, limit=2)]
        if not page:
            break
        pages.append(page)
        before = page[-1]
        if len(pages) == 1:
            await create(acme, "six", user="acme")
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == newest_first


async def test_upstream_calls_count_the_window_only(
    app: Starlette, engine: AsyncEngine, acme: httpx.AsyncClient
) -> None:
    polled = await create(acme, "a heron")
    async with engine.begin() as conn:
        await conn.execute(
            update(tasks).where(tasks.c.id == polled["id"]).values(upstream_route="gateway:veo3")
        )
        assert await first_id_since(conn, utcnow()) is None
        now = utcnow()
        # Twenty minutes of history, one row a minute, oldest first (as rows are written).
        for minutes in range(20, 0, -1):
            at = now - timedelta(minutes=minutes)
            failed = minutes % 4 == 0
            submit = {"route": "gemini", "latency_ms": 5, **({"error": "auth"} if failed else {})}
            poll = {"latency_ms": 5, **({"error": "timeout"} if failed else {"state": "running"})}
            rows = [
                {"task_id": polled["id"], "at": at, "kind": "submit", "detail": submit},
                {"task_id": polled["id"], "at": at, "kind": "poll", "detail": poll},
                {"task_id": polled["id"], "at": at, "kind": "status", "detail": {"status": "x"}},
            ]
            await conn.execute(insert(activity_table), rows)
    async with engine.connect() as conn:
        lower = await first_id_since(conn, now - timedelta(minutes=15, seconds=30))
        in_window = await conn.execute(
            select(activity_table.c.id).where(
                activity_table.c.at >= now - timedelta(minutes=15, seconds=30)
            )
        )
        assert lower == min(row.id for row in in_window)
        calls = await upstream_calls(conn, now - timedelta(minutes=15, seconds=30))
        assert await first_id_since(conn, now) is None
        assert await upstream_calls(conn, now) == {}
    # Minutes 15..1 are in: 15 submits to gemini (3 failed: 12, 8, 4) and 15 polls counted
    # for the task's route (gateway), 3 failed.
    assert calls == {"gemini": Calls(15, 3), "gateway": Calls(15, 3)}


async def test_search_time_range_at_the_calendar_edges(engine: AsyncEngine) -> None:
    """A range from year 1 or to year 9999 (a ``datetime-local`` input allows both) is a
    range, not an OverflowError from the id bound's minute of slack."""
    first = datetime(1, 1, 1, tzinfo=UTC)
    last = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    assert await _ids(engine, TaskFilter(created_from=first, created_to=last)) == []
    assert await _ids(engine, TaskFilter(created_to=first)) == []
    east = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    west = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-5)))
    assert await _ids(engine, TaskFilter(created_from=east, created_to=west)) == []
