"""Limits (README, "Limits"), in-process on PostgreSQL and SQLite: each limit answers a
429 ``rate_limited`` problem with ``Retry-After``, costs nothing when it refuses, is
changed at runtime through the admin config, and lets requests through when Redis is
gone. The real-server parts (slow clients, floods, latency) are in
``test_limits_server.py``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from limits import RateLimitItemPerSecond
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import Redis
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from cli.supervise import free_port
from core.ids import new_id
from core.repo import events as event_rows
from core.repo.tables import delivery_attempts
from schemas.clock import utcnow
from schemas.settings import Settings
from schemas.status import DeliveryStatus
from service.app import create_app
from service.ratelimit import RateLimits, Rule
from tests.integration.conftest import BACKENDS, _client
from tests.integration.test_hostile_kinds import assert_problem

PROMPT = "a lighthouse in a storm"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def assert_limited(response: httpx.Response, window: int) -> int:
    """A 429 ``rate_limited`` problem whose ``Retry-After`` is whole seconds within the
    window; returns it."""
    problem = assert_problem(response, 429, "rate_limited")
    wait = int(response.headers["retry-after"])
    assert 1 <= wait <= window and problem["retry_after"] == wait, (wait, problem)
    return wait


async def test_a_client_over_its_request_rate_gets_429_and_others_do_not(
    client_for, admin, configure
):
    await configure(client_requests_per_minute=5)
    acme, other = await client_for("acme"), await client_for("other")
    for _ in range(5):
        assert (await acme.get("/v1/videos")).status_code == 200
    assert_limited(await acme.get("/v1/videos"), 60)
    assert_limited(await acme.get("/v1/models"), 60)  # every operation counts
    assert (await other.get("/v1/videos")).status_code == 200
    for _ in range(10):  # admins are exempt: an operator can always reach the config
        assert (await admin.get("/v1/admin/config")).status_code == 200
    await configure(client_requests_per_minute=100)  # a new limit applies at once
    assert (await acme.get("/v1/videos")).status_code == 200


async def test_creates_count_against_the_client_rate_whichever_way_they_end(
    client_for, grant, configure, assert_ledger
):
    """A create counts its client request with the user's create in one Redis round trip,
    and on its own when it ends before that (a bad body, an idempotent replay): every way
    counts once, and a client over its rate gets the 429 before any other answer."""
    await configure(client_requests_per_minute=5, max_concurrent_tasks_per_user=100)
    acme = await client_for("acme")
    await grant("acme", "erin", 1000)
    body = {"prompt": PROMPT, "model": "veo3", "user": "erin"}
    headers = {"Idempotency-Key": "counted-once"}
    assert (await acme.post("/v1/videos", json=body, headers=headers)).status_code == 200
    assert (await acme.post("/v1/videos", json=body, headers=headers)).status_code == 200
    assert (await acme.post("/v1/videos", json={"prompt": ""})).status_code == 400
    assert (await acme.post("/v1/videos", json=body)).status_code == 200
    assert (await acme.get("/v1/videos")).status_code == 200  # the fifth request
    problem = assert_problem(await acme.post("/v1/videos", json=body), 429, "rate_limited")
    assert "requests per minute" in problem["detail"]
    for refused in (
        acme.post("/v1/videos", json={"prompt": ""}),
        acme.post("/v1/videos", json=body, headers=headers),
        acme.get("/v1/videos"),
    ):
        assert_limited(await refused, 60)
    await configure(client_requests_per_minute=100)
    erin = (await acme.get("/v1/credits/erin")).json()
    assert (erin["balance"], erin["held"]) == (800, 200)  # two creates; the refused held nothing
    await assert_ledger()


async def test_chained_hits_are_the_windows_the_library_reads(redis_url):
    """``RateLimits.hit_all`` runs ``limits``' own script on its own keys, in order, in one
    round trip: what it counts is what the library's window stats and checks see (a
    layout change in a new version of the library fails here); a hit after a refused one
    is not counted; a Redis that lost its scripts gets them again."""
    limits = RateLimits(redis_url)
    rule = Rule(f"chained-{new_id('t')}", 3, 60)
    other = Rule(f"chained-other-{new_id('t')}", 10, 60)
    library = SlidingWindowCounterRateLimiter(limits._storage)
    item = RateLimitItemPerSecond(rule.amount, rule.seconds)
    other_item = RateLimitItemPerSecond(other.amount, other.seconds)
    try:
        assert await limits.hit_all((rule, ("acme",)), (other, ("acme", "bob"))) is None
        redis = Redis.from_url(redis_url)
        try:
            await redis.script_flush()
        finally:
            await redis.aclose()
        assert await limits.hit(rule, "acme") is None
        assert await limits.hit(rule, "acme") is None
        assert not await library.test(item, rule.name, "acme")
        assert (await library.get_window_stats(item, rule.name, "acme")).remaining == 0
        seen = await library.get_window_stats(other_item, other.name, "acme", "bob")
        assert seen.remaining == 9
        # Refused by the first: the second is not counted (not even asked from memory).
        fresh = RateLimits(redis_url)
        try:
            refused = await fresh.hit_all((rule, ("acme",)), (other, ("acme", "bob")))
        finally:
            await fresh.close()
        assert refused is not None and refused[0] == 0 and 1 <= refused[1] <= 60
        refused = await limits.hit_all((rule, ("acme",)), (other, ("acme", "bob")))
        assert refused is not None and refused[0] == 0  # now from this process's memory
        seen = await library.get_window_stats(other_item, other.name, "acme", "bob")
        assert seen.remaining == 9
        # The second refused: the first is counted once all the same.
        full = Rule(f"chained-full-{new_id('t')}", 1, 60)
        assert await limits.hit(full, "acme") is None
        refused = await limits.hit_all((other, ("acme", "bob")), (full, ("acme",)))
        assert refused is not None and refused[0] == 1
        refused = await limits.hit_all((other, ("acme", "bob")), (full, ("acme",)))
        assert refused is not None and refused[0] == 1  # the second from memory
        seen = await library.get_window_stats(other_item, other.name, "acme", "bob")
        assert seen.remaining == 7
    finally:
        await limits.close()


async def test_a_user_over_its_creates_per_minute_gets_429_and_holds_nothing(
    client_for, grant, configure, assert_ledger
):
    await configure(user_creates_per_minute=2, max_concurrent_tasks_per_user=100)
    acme = await client_for("acme")
    await grant("acme", "alice", 1000)
    await grant("acme", "bob", 1000)
    body = {"prompt": PROMPT, "model": "veo3", "user": "alice"}  # 100 credits
    for _ in range(2):
        assert (await acme.post("/v1/videos", json=body)).status_code == 200
    for _ in range(3):
        assert_limited(await acme.post("/v1/videos", json=body), 60)
    alice = (await acme.get("/v1/credits/alice")).json()
    assert (alice["balance"], alice["held"]) == (800, 200)  # the refused creates held nothing
    assert len((await acme.get("/v1/videos", params={"user": "alice"})).json()["data"]) == 2
    response = await acme.post("/v1/videos", json={**body, "user": "bob"})
    assert response.status_code == 200  # per user
    await assert_ledger()


async def test_an_idempotent_replay_is_not_a_create_and_never_limited(
    client_for, grant, configure, assert_ledger
):
    """A client retrying a create it already made gets its video, whatever the limit."""
    await configure(user_creates_per_minute=1, max_concurrent_tasks_per_user=100)
    acme = await client_for("acme")
    await grant("acme", "dave", 1000)
    body = {"prompt": PROMPT, "model": "veo3", "user": "dave"}
    headers = {"Idempotency-Key": "retry-me"}
    first = await acme.post("/v1/videos", json=body, headers=headers)
    assert first.status_code == 200, first.text
    for _ in range(3):
        again = await acme.post("/v1/videos", json=body, headers=headers)
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert_limited(await acme.post("/v1/videos", json=body), 60)  # a new create is
    await assert_ledger()


async def _cancelled_event(client: httpx.AsyncClient) -> str:
    video = (await client.post("/v1/videos", json={"prompt": PROMPT})).json()
    assert (await client.post(f"/v1/videos/{video['id']}/cancel")).status_code == 200
    events = (await client.get("/v1/events")).json()["data"]
    return next(str(e["id"]) for e in events if e["data"]["id"] == video["id"])


async def test_replays_are_limited_per_event_and_per_client(client_for, grant, configure):
    await configure(replays_per_event_per_hour=3, replays_per_client_per_minute=5)
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    first, second = await _cancelled_event(acme), await _cancelled_event(acme)
    for _ in range(3):
        assert (await acme.post(f"/v1/events/{first}/replay")).status_code == 202
    assert_limited(await acme.post(f"/v1/events/{first}/replay"), 3600)
    for _ in range(2):  # the refused replay did not count for the client
        assert (await acme.post(f"/v1/events/{second}/replay")).status_code == 202
    assert_limited(await acme.post(f"/v1/events/{second}/replay"), 60)


async def test_failed_authentication_is_limited_per_address(app, configure):
    await configure(failed_auth_per_minute_per_address=4)
    async with _client(app, None) as anonymous:
        for n in range(4):
            wrong = {"Authorization": f"Bearer gv_not_a_key_{n}"}
            assert_problem(await anonymous.get("/v1/videos", headers=wrong), 401, "unauthorized")
        wrong = {"Authorization": "Bearer gv_not_a_key_5"}
        assert_limited(await anonymous.get("/v1/models", headers=wrong), 60)
        # No key costs no lookup, so it is not counted nor refused: still a plain 401.
        assert_problem(await anonymous.get("/v1/videos"), 401, "unauthorized")
        assert (await anonymous.get("/healthz")).status_code == 200


async def test_wrong_callback_tokens_and_callbacks_are_limited_per_address(app, configure):
    await configure(failed_auth_per_minute_per_address=3, callbacks_per_minute_per_address=5)
    wrong = "/v1/upstream/callback/video_0123456789ab.0123456789abcdef0123456789abcdef"
    async with _client(app, None) as upstream:
        for _ in range(3):
            assert_problem(await upstream.post(wrong), 404, "not_found")
        for _ in range(2):  # the 4th and 5th callbacks: a 4th and 5th wrong token
            assert_limited(await upstream.post(wrong), 60)
        problem = (await upstream.post(wrong)).json()  # the 6th callback
        assert problem["code"] == "rate_limited" and "callbacks" in problem["detail"]


async def test_event_deliveries_are_paginated_and_fast(client_for, grant, engine):
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    event_id = await _cancelled_event(acme)
    ids = await _deliveries(engine, event_id, count=600, attempts_each=13)
    seen: list[str] = []
    after: str | None = None
    slowest = 0.0
    while True:
        started = time.perf_counter()
        params: dict[str, Any] = {"limit": 100, **({"after": after} if after else {})}
        response = await acme.get(f"/v1/events/{event_id}", params=params)
        slowest = max(slowest, time.perf_counter() - started)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["deliveries"]) <= 100
        for delivery in page["deliveries"]:
            assert [a["status_code"] for a in delivery["attempt_log"]] == list(range(500, 513))
        seen += [d["id"] for d in page["deliveries"]]
        if not page["deliveries_has_more"]:
            break
        after = seen[-1]
    assert seen == ids  # every delivery once, oldest first
    assert slowest < 1.0, slowest  # 100 deliveries with 1,300 attempts per page
    default = (await acme.get(f"/v1/events/{event_id}")).json()
    assert len(default["deliveries"]) == 20 and default["deliveries_has_more"] is True
    response = await acme.get(f"/v1/events/{event_id}", params={"after": "whep_1"})
    assert_problem(response, 400, "invalid_cursor")


async def _deliveries(
    engine: AsyncEngine, event_id: str, *, count: int, attempts_each: int
) -> list[str]:
    """``count`` delivered deliveries of the event, each after ``attempts_each`` attempts
    (status codes 500, 501, …); their ids, oldest first."""
    now = utcnow()
    ids = sorted(new_id("dlv") for _ in range(count))
    rows = [
        {
            "id": delivery_id,
            "event_id": event_id,
            "client_id": "acme",
            "endpoint_id": None,
            "url": "https://hooks.example/x",
            "status": str(DeliveryStatus.FAILED),
            "attempts": attempts_each,
            "next_attempt_at": None,
            "created_at": now,
        }
        for delivery_id in ids
    ]
    attempts = [
        {
            "delivery_id": delivery_id,
            "at": now + timedelta(seconds=n),
            "status_code": 500 + n,
            "latency_ms": 5,
            "error": None,
        }
        for n in range(attempts_each)
        for delivery_id in ids
    ]
    async with engine.begin() as conn:
        await event_rows.insert_deliveries(conn, rows)
        await conn.execute(insert(delivery_attempts), attempts)
    return ids


@pytest.fixture
async def without_redis(engine: AsyncEngine, settings: Settings) -> AsyncIterator[Starlette]:
    """The API with its Redis URL pointing at a port nobody listens on."""
    gone = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    application = create_app(gone)
    async with application.router.lifespan_context(application):
        yield application


async def test_limits_let_requests_through_when_redis_is_gone(
    without_redis, app, client_for, grant, configure
):
    await configure(client_requests_per_minute=1, user_creates_per_minute=1)
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    async with _client(without_redis, acme.api_key) as degraded:
        for _ in range(3):
            assert (await degraded.get("/v1/videos")).status_code == 200
        for _ in range(2):  # creates stay durable in the database
            assert (await degraded.post("/v1/videos", json={"prompt": PROMPT})).status_code == 200
