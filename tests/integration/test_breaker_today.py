"""Breaker probes of the three changes of 97ab768..71caa7f, on PostgreSQL and SQLite.

1. Idempotent retries vs ``user_creates_per_minute`` (a76e1ce): the claims held under
   the attacks tried.
2. ``task_activity`` retention (e406128): ``purge_before`` trusted ``at`` to grow with
   ``id`` further than "the edge" (one writer's clock 40 days behind took the healthy
   writers' fresh rows, or the whole table, with it), a row committed during a purge could
   go at once, and an id gap cost one empty statement per 10,000 ids. Fixed after: only a
   row's own ``at`` decides, and the walk goes from row to row.
3. Catalogue <-> create (513bafd..71caa7f): the new write checks of a catalogue entry were
   applied to the whole stored document on every config write, so an entry an earlier
   version stored locked the operator out of every change, ``enabled: false`` included.
   Fixed after: an entry a write leaves as it was is not checked again."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only
from starlette.applications import Starlette

from core.db import autocommit
from core.repo import config as config_repo
from core.repo.activity import first_id_since, purge_before
from core.repo.tables import activity, tasks
from schemas.catalogue import DEFAULT_CATALOGUE
from schemas.clock import utcnow
from tests.integration.conftest import BACKENDS
from tests.integration.test_breaker_limits import counted, task_count
from tests.integration.test_console import console  # noqa: F401  (a fixture)
from tests.integration.test_hostile_kinds import assert_problem
from tests.integration.test_limits import PROMPT


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- 1. idempotent retries vs the user's creates limit ---------------------------------


async def _tasks_of(engine: AsyncEngine, user: str) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(func.count()).select_from(tasks).where(tasks.c.user == user)
        )
    return int(found or 0)


async def test_hostile_keys_never_get_more_tasks_than_the_creates_limit(
    app, client_for, grant, configure, engine, assert_ledger
):
    """Every way to mix keys I found, each on a user of its own (``user``): retries after
    a 402, a refused ``webhook_url`` and a missing upload (then the 402's key once credits
    came), one key under other bodies and ``user`` spellings, JSON and multipart
    retries of one key, a flood of keys, keyed retries after unkeyed creates warmed this
    process's refusal memory. No user gets more tasks than ``user_creates_per_minute`` or
    than its counted creates, every request counts against the client's rate, no 500."""
    limit = 3
    await configure(
        client_requests_per_minute=1000,
        user_creates_per_minute=limit,
        max_concurrent_tasks_per_user=100,
    )
    acme = await client_for("acme")
    sent = 0
    statuses: Counter[int] = Counter()

    def body(user: str, **change: Any) -> dict[str, Any]:
        return {"prompt": PROMPT, "model": "veo3", "user": user, **change}

    async def post(key: str | None = None, **kwargs: Any) -> httpx.Response:
        nonlocal sent
        sent += 1
        headers = {"Idempotency-Key": key} if key is not None else {}
        response = await acme.post("/v1/videos", headers=headers, **kwargs)
        statuses[response.status_code] += 1
        assert response.status_code < 500, response.text
        return response

    async def burst(n: int, key: Any, payload: Any) -> None:
        await asyncio.gather(*(post(key(i), json=payload(i)) for i in range(n)))

    # Failures after the count, each retried at once; then the same keys can succeed.
    upload = "upload_" + "0" * 24
    failing = {
        "poor": body("poor"),
        "hook": body("hook", webhook_url="https://10.1.2.3/hook"),
        "upload": body("upload", model="veo3-pro-frames", images=[upload]),
    }
    for key, payload in failing.items():
        await burst(5, lambda i, key=key: key, lambda i, payload=payload: payload)
    for user in ("poor", "hook", "upload", "mixed", "flood", "warm"):
        await grant("acme", user, 10_000)
    await burst(5, lambda i: "poor", lambda i: failing["poor"])
    # One key, many bodies and spellings of the user; multipart beside JSON.
    spellings = ["mixed", "mixed ", "Mixed", "mixed"]
    await burst(12, lambda i: "mixed", lambda i: body(spellings[i % 4], seed=i % 2))
    form = {"prompt": (None, PROMPT), "model": (None, "veo3"), "user": (None, "mixed")}
    await asyncio.gather(*(post("mixed-form", files=form) for _ in range(5)))
    await burst(5, lambda i: "mixed-form", lambda i: body("mixed"))
    # A flood of keys, some retried.
    await burst(30, lambda i: f"flood{i % 10}", lambda i: body("flood"))
    # Unkeyed creates over the limit first (this process remembers the refusal), then
    # keyed ones.
    await burst(6, lambda i: None, lambda i: body("warm"))
    await burst(10, lambda i: f"warm{i % 2}", lambda i: body("warm"))

    made = {}
    for user in ("poor", "hook", "upload", "mixed", "mixed ", "Mixed", "flood", "warm"):
        creates = await counted(app, "creates", limit, "acme", user)
        made[user] = (await _tasks_of(engine, user), creates)
    print("statuses", dict(statuses), "user: (tasks, creates counted)", made)
    for user, (tasks_made, creates) in made.items():
        assert tasks_made <= creates <= limit, (user, tasks_made, creates)
    assert made["flood"][0] == limit and made["warm"][0] == limit
    assert made["poor"][0] == 1  # its key, counted once, created once it could
    assert await counted(app, "client", 1000, "acme") == sent
    await assert_ledger()


# --- 2. task_activity retention ---------------------------------------------------------


async def _fresh_and_skewed(engine: AsyncEngine, rows: int, skewed: str) -> None:
    """``rows`` activity rows of the last hour, as workers write them: the rows of one
    whose clock is 40 days behind interleaved with the others' (``every other``), or that
    one's single row written last (``last``)."""
    now = utcnow()
    skew = timedelta(days=40)

    def behind(i: int) -> bool:
        return i % 2 == 1 if skewed == "every other" else i == rows - 1

    async with engine.begin() as conn:
        await conn.execute(
            insert(activity),
            [
                {
                    "task_id": f"video_{i}",
                    "at": now - timedelta(minutes=60 - i % 60) - skew * behind(i),
                    "kind": "poll",
                    "detail": {"fresh": not behind(i)},
                }
                for i in range(rows)
            ],
        )


async def _fresh_left(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(activity.c.detail))).scalars().all()
    return sum(1 for detail in rows if detail["fresh"])


@pytest.mark.parametrize("skewed", ["every other", "last"])
async def test_a_worker_with_a_clock_behind_does_not_make_the_purge_delete_fresh_rows(
    engine: AsyncEngine, skewed: str
) -> None:
    await _fresh_and_skewed(engine, 200, skewed)
    fresh = await _fresh_left(engine)
    async with autocommit(engine) as conn:
        purged = await purge_before(conn, utcnow() - timedelta(days=30))
    left = await _fresh_left(engine)
    print("purged", purged, "fresh rows left", left, "of", fresh)
    assert left == fresh  # every row the healthy workers wrote this hour stays


async def test_a_gap_in_the_ids_costs_no_statement_per_10000_missing_ids(
    engine: AsyncEngine,
) -> None:
    now = utcnow()
    old = now - timedelta(days=40)
    ids_and_ages = [(1, old), (2, old), (20_000_003, old), (20_000_004, now)]
    async with engine.begin() as conn:
        await conn.execute(
            insert(activity),
            [
                {"id": i, "task_id": "video_gap", "at": at, "kind": "poll", "detail": {}}
                for i, at in ids_and_ages
            ],
        )
    deletes: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with autocommit(engine) as conn:
            purged = await purge_before(conn, now - timedelta(days=30))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert purged == 3
    print("DELETE statements:", len(deletes))
    assert len(deletes) <= 10


async def test_a_row_written_while_the_purge_runs_is_not_purged(engine: AsyncEngine) -> None:
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            insert(activity),
            [
                {"task_id": "video_old", "at": now - timedelta(days=40), "kind": "poll",
                 "detail": {"fresh": False}}
                for _ in range(5)
            ],
        )  # fmt: skip
    async with engine.connect() as other:
        written: list[bool] = []

        def between(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            # The purge's own max(id), after first_id_since found every row older: another
            # process's transaction commits a fresh row just then.
            flat = statement.lower()
            if "max(" in flat and "min(" not in flat and not written:
                written.append(True)
                row = {"task_id": "video_new", "at": utcnow(), "kind": "status",
                       "detail": {"fresh": True}}  # fmt: skip
                await_only(other.execute(insert(activity), row))
                await_only(other.commit())

        event.listen(engine.sync_engine, "before_cursor_execute", between)
        try:
            async with autocommit(engine) as conn:
                await purge_before(conn, now - timedelta(days=30))
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", between)
    assert written == [True]
    assert await _fresh_left(engine) == 1


async def test_first_id_since_right_after_a_purge_points_at_the_rows_left(
    engine: AsyncEngine,
) -> None:
    """The health numbers' lower bound after a purge emptied the older part of the table
    (and after it emptied all of it)."""
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            insert(activity),
            [
                {"task_id": f"video_{i}", "at": now - timedelta(days=60 - i), "kind": "poll",
                 "detail": {"fresh": i > 30}}
                for i in range(60)
            ],
        )  # fmt: skip
    async with autocommit(engine) as conn:
        assert await purge_before(conn, now - timedelta(days=30)) == 30
        lower = await first_id_since(conn, now - timedelta(days=10))
        assert lower is not None
        left = (await conn.execute(select(func.count()).where(activity.c.id >= lower))).scalar_one()
        assert left == 10  # days 50..59 of 60
        assert await purge_before(conn, now + timedelta(seconds=1)) == 30
        assert await first_id_since(conn, now - timedelta(days=10)) is None


# --- 3. catalogue <-> create ------------------------------------------------------------

# Entries the write checks of 97ab768 accepted and today's refuse (each alone).
EARLIER_ENTRIES: list[dict[str, Any]] = [
    {"id": "old-lso-1080", "aspect_ratios": ["16:9"], "resolutions": ["720p"],
     "durations": [4, 8], "longest_seconds_only": ["1080p"], "price": 10},
    {"id": "old-no-ratio", "resolutions": ["720p"], "durations": [8], "price": 10},
]  # fmt: skip


async def _store_earlier_document(app: Starlette, engine: AsyncEngine, entry: Any) -> None:
    """The runtime config as an API of 97ab768 would have stored it after an operator
    added ``entry`` (it passed that version's write checks)."""
    async with engine.begin() as conn:
        document = await config_repo.document(conn)
        assert document is not None
        document["models"] = [m.model_dump(mode="json") for m in DEFAULT_CATALOGUE] + [entry]
        await config_repo.replace(conn, document)
    app.state.ctx.config._loaded_at = 0.0  # read it now, not after the cache's second


@pytest.mark.parametrize("entry", EARLIER_ENTRIES, ids=[e["id"] for e in EARLIER_ENTRIES])
async def test_an_entry_stored_by_the_earlier_version_does_not_lock_the_config(
    app, engine, admin, entry
):
    await _store_earlier_document(app, engine, entry)
    # Reads take the stored document as it is (the model is listed and usable).
    models = await admin.get("/v1/models")
    assert models.status_code == 200
    assert entry["id"] in [m["id"] for m in models.json()["data"]]
    response = await admin.put("/v1/admin/config", json={"enabled": False})
    assert response.status_code == 200, response.text
    # The catalogue written back as it reads is kept as it is; an edit of the old entry
    # is a new entry, checked as one (and so is a new entry shaped like it).
    stored = (await admin.get("/v1/admin/config")).json()["models"]
    response = await admin.put("/v1/admin/config", json={"models": stored})
    assert response.status_code == 200, response.text
    for changed in (
        [{**m, "price": 11} if m["id"] == entry["id"] else m for m in stored],
        [*stored, {**next(m for m in stored if m["id"] == entry["id"]), "id": "copy"}],
    ):
        response = await admin.put("/v1/admin/config", json={"models": changed})
        assert response.status_code == 400, response.text
        assert entry["id"] in response.text or "copy" in response.text


async def test_videos_of_a_removed_or_reshaped_entry_still_read(
    app,
    admin,
    console,  # noqa: F811
    configure,
    client_for,
    grant,
    engine,
    assert_ledger,
):
    """Tasks made under an operator's odd shapes (21:9 at 480p rounds, 1:1, 99:1 at
    9999p), in JSON and multipart; then the entry is reshaped and removed: each video,
    the list and the console's page of the video still answer."""
    entry = {
        "id": "op-odd", "aspect_ratios": ["21:9", "1:1", "99:1", "16:9"],
        "resolutions": ["480p", "9999p"], "durations": [3, 600], "price": 1,
    }  # fmt: skip
    listed = (await admin.get("/v1/models")).json()["data"]
    defaults = [m.model_dump(mode="json") for m in DEFAULT_CATALOGUE]
    await configure(models=[*defaults, entry], max_concurrent_tasks_per_user=100)
    info = next(m for m in (await admin.get("/v1/models")).json()["data"] if m["id"] == "op-odd")
    assert len(listed) == len(defaults)
    assert "854x480" in info["sizes"] and "1120x480" in info["sizes"]
    assert "989901x9999" in info["sizes"]
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    made = []
    for size in info["sizes"]:
        json_made = await acme.post(
            "/v1/videos", json={"prompt": PROMPT, "model": "op-odd", "size": size, "seconds": "3"}
        )
        assert json_made.status_code == 200, json_made.text
        assert json_made.json()["size"] == size
        form_made = await acme.post(
            "/v1/videos",
            files={"prompt": (None, PROMPT), "model": (None, "op-odd"), "size": (None, size)},
        )
        assert form_made.status_code == 200, form_made.text
        made += [json_made.json()["id"], form_made.json()["id"]]
    assert_problem(
        await acme.post("/v1/videos", json={"prompt": PROMPT, "model": "op-odd", "size": "7x5"}),
        400,
        "validation_error",
    )
    await configure(models=[*defaults, {**entry, "aspect_ratios": ["1:1"]}])
    await configure(models=defaults)
    for video_id in made:
        one = await acme.get(f"/v1/videos/{video_id}")
        assert one.status_code == 200, one.text
        assert one.json()["model"] == "op-odd"
        page = await console.get(f"/console/videos/{video_id}")
        assert page.status_code == 200, page.text[:300]
    assert (await acme.get("/v1/videos", params={"limit": 100})).status_code == 200
    assert (await console.get("/console/videos")).status_code == 200
    assert (await console.get("/console/config")).status_code == 200
    assert_problem(
        await acme.post("/v1/videos", json={"prompt": PROMPT, "model": "op-odd"}),
        400,
        "unknown_model",
    )
    assert await task_count(engine, "acme") == len(made)
    await assert_ledger()
