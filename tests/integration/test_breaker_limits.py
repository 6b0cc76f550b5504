"""Breaker probes of the create's rate-limit counting (found on 4628823, fixed after):
every way out of a create counts exactly one client request, the client's 429 comes
first, the user's creates limit and the admin exemption hold, Redis trouble fails open
and concurrency at the edge of either limit admits no more than the limit, on PostgreSQL
and SQLite.

Counts are read from the ``limits`` library's own two window keys (current + previous),
summed, so a test crossing a window boundary still sees every hit it made."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from limits import RateLimitItemPerSecond
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from cli.localservices import RedisServer
from core.repo.tables import tasks
from schemas.settings import Settings
from service.app import create_app
from service.ratelimit import RateLimits
from tests.integration.conftest import BACKENDS, _client
from tests.integration.images import PNG
from tests.integration.test_hostile_kinds import assert_problem, raw_create_scope
from tests.integration.test_limits import PROMPT


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def counted(app: Starlette, name: str, amount: int, *who: str) -> int:
    """The hits Redis holds for limit ``name`` (``amount`` per 60 s) of ``who``."""
    limits: RateLimits = app.state.ctx.limits
    storage = limits._storage
    bridge = storage.bridge
    key = RateLimitItemPerSecond(amount, 60).key_for(name, *who)
    redis = Redis.from_url(app.state.ctx.settings.redis_url)
    try:
        values = await redis.mget(
            bridge.prefixed_key(storage._current_window_key(key)),
            bridge.prefixed_key(storage._previous_window_key(key)),
        )
    finally:
        await redis.aclose()
    return sum(int(v) for v in values if v is not None)


async def task_count(engine: AsyncEngine, client_id: str) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(func.count()).select_from(tasks).where(tasks.c.client_id == client_id)
        )
    return int(found or 0)


CLIENT_RATE = 1000


async def test_every_way_out_of_a_create_counts_exactly_one_client_request(
    app, client_for, grant, configure, settings, assert_ledger
):
    await configure(client_requests_per_minute=CLIENT_RATE, max_concurrent_tasks_per_user=100)
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    body = {"prompt": PROMPT, "model": "veo3"}
    key = {"Idempotency-Key": "k-once"}
    too_big = b'{"prompt": "' + b"x" * (settings.max_body_bytes + 10) + b'"}'
    cases: list[tuple[str, Any, int]] = [
        ("valid", acme.post("/v1/videos", json=body), 200),
        ("keyed", acme.post("/v1/videos", json=body, headers=key), 200),
        ("replay", acme.post("/v1/videos", json=body, headers=key), 200),
        (
            "replay, other body",
            acme.post("/v1/videos", json={**body, "prompt": "other"}, headers=key),
            422,
        ),
        (
            "invalid JSON",
            acme.post("/v1/videos", content=b"{nope", headers={"content-type": "application/json"}),
            400,
        ),
        ("invalid field", acme.post("/v1/videos", json={"prompt": ""}), 400),
        ("unknown model", acme.post("/v1/videos", json={**body, "model": "nope"}), 400),
        (
            "multipart",
            acme.post("/v1/videos", files={"prompt": (None, PROMPT), "model": (None, "veo3")}),
            200,
        ),
        (
            "multipart, bad file",
            acme.post(
                "/v1/videos",
                data={"prompt": PROMPT},
                files={"input_reference": ("a.png", b"not a png", "image/png")},
            ),
            400,
        ),
        (
            "multipart, wrong field",
            acme.post(
                "/v1/videos", data={"prompt": PROMPT}, files={"other": ("a.png", PNG, "image/png")}
            ),
            400,
        ),
        (
            "oversized",
            acme.post("/v1/videos", content=too_big, headers={"content-type": "application/json"}),
            413,
        ),
        ("wrong media type", acme.post("/v1/videos", content=b"hi"), 415),
        (
            "bad Idempotency-Key",
            acme.post("/v1/videos", json=body, headers={"Idempotency-Key": "k" * 300}),
            400,
        ),
    ]
    for name, request, status in cases:
        before = await counted(app, "client", CLIENT_RATE, "acme")
        response = await request
        assert response.status_code == status, (name, response.status_code, response.text[:300])
        after = await counted(app, "client", CLIENT_RATE, "acme")
        assert after - before == 1, (name, before, after)
    await configure(enabled=False)
    before = await counted(app, "client", CLIENT_RATE, "acme")
    assert_problem(await acme.post("/v1/videos", json=body), 503, "service_disabled")
    assert await counted(app, "client", CLIENT_RATE, "acme") - before == 1
    await assert_ledger()


async def test_creates_refused_from_memory_for_the_user_still_count_the_client_request(
    app, client_for, grant, configure
):
    await configure(client_requests_per_minute=5, user_creates_per_minute=1)
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    body = {"prompt": PROMPT, "model": "veo3"}
    assert (await acme.post("/v1/videos", json=body)).status_code == 200  # request 1
    for _ in range(4):  # requests 2-5: the user's creates refuse each
        problem = assert_problem(await acme.post("/v1/videos", json=body), 429, "rate_limited")
        assert "creates per minute" in problem["detail"]
    assert await counted(app, "client", 5, "acme") == 5
    assert_problem(await acme.get("/v1/videos"), 429, "rate_limited")  # the 6th request


async def test_a_create_refused_for_the_client_rate_costs_the_user_no_create(
    app, client_for, grant, configure, engine
):
    await configure(
        client_requests_per_minute=3, user_creates_per_minute=4, max_concurrent_tasks_per_user=100
    )
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    body = {"prompt": PROMPT, "model": "veo3"}
    for _ in range(3):
        assert (await acme.post("/v1/videos", json=body)).status_code == 200
    problem = assert_problem(await acme.post("/v1/videos", json=body), 429, "rate_limited")
    assert "requests per minute" in problem["detail"]
    await configure(client_requests_per_minute=100)  # the operator lets the client go on
    response = await acme.post("/v1/videos", json=body)  # the user's 4th create
    assert response.status_code == 200, response.text[:300]
    assert await task_count(engine, "acme") == 4


@pytest.fixture
async def replica(app: Starlette, settings: Settings) -> AsyncIterator[Starlette]:
    """A second API process on the same database and Redis, that has seen no refusal."""
    other = create_app(settings)
    async with other.router.lifespan_context(other):
        yield other


async def test_a_client_over_its_rate_gets_429_first_on_a_replica_that_never_refused_it(
    app, replica, client_for, grant, configure, engine, assert_ledger
):
    """The refusal comes from Redis, not this process's memory: each way out of the create
    answers 429 ``rate_limited`` before its own answer, and holds nothing."""
    await configure(client_requests_per_minute=3)
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    body = {"prompt": PROMPT, "model": "veo3"}
    made = await acme.post("/v1/videos", json=body, headers={"Idempotency-Key": "made-before"})
    assert made.status_code == 200, made.text
    for _ in range(2):
        assert (await acme.get("/v1/models")).status_code == 200
    ways: list[tuple[str, dict[str, Any]]] = [
        ("valid", {"json": body}),
        ("invalid JSON", {"content": b"{", "headers": {"content-type": "application/json"}}),
        ("invalid field", {"json": {"prompt": ""}}),
        ("multipart", {"files": {"prompt": (None, PROMPT)}}),
        ("replay", {"json": body, "headers": {"Idempotency-Key": "made-before"}}),
    ]
    for name, kwargs in ways:
        async with _client(replica, acme.api_key) as fresh:
            # each way on a fresh replica process memory would answer it otherwise
            replica.state.ctx.limits._refused.clear()
            response = await fresh.post("/v1/videos", **kwargs)
        problem = assert_problem(response, 429, "rate_limited")
        assert "requests per minute" in problem["detail"], (name, problem)
        assert 1 <= int(response.headers["retry-after"]) <= 60
    assert await task_count(engine, "acme") == 1
    assert await counted(app, "client", 3, "acme") == 3  # refused hits are not counted
    await assert_ledger()


async def test_admin_creates_are_never_rate_limited(admin, grant, configure, assert_ledger):
    await configure(client_requests_per_minute=2, user_creates_per_minute=1)
    await grant("admin", "root", 1000)
    body = {"prompt": PROMPT, "model": "veo3", "user": "root"}
    answers = [(await admin.post("/v1/videos", json=body)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3, [a.text[:200] for a in answers]
    await assert_ledger()


async def test_fifty_concurrent_creates_at_the_client_rate_admit_exactly_the_rest(
    app, admin, client_for, grant, configure, engine, assert_ledger
):
    await configure(
        client_requests_per_minute=10,
        user_creates_per_minute=1000,
        max_concurrent_tasks_per_user=100,
    )
    acme = await client_for("acme")
    await grant("acme", "acme", 10_000)
    for _ in range(4):
        assert (await acme.get("/v1/models")).status_code == 200
    body = {"prompt": PROMPT, "model": "veo3"}
    answers = await asyncio.gather(*(acme.post("/v1/videos", json=body) for _ in range(50)))
    statuses = sorted(a.status_code for a in answers)
    odd = [a.text[:200] for a in answers if a.status_code not in (200, 429)]
    assert statuses == [200] * 6 + [429] * 44, (Counter(statuses), odd)
    for refused in (a for a in answers if a.status_code == 429):
        assert_problem(refused, 429, "rate_limited")
    assert await task_count(engine, "acme") == 6
    assert await counted(app, "client", 10, "acme") == 10
    credits = (await admin.get("/v1/credits/acme", params={"client": "acme"})).json()
    assert credits["held"] == 600
    # What the refused ones cost the user's creates (README: "may still count"):
    print("user creates counted:", await counted(app, "creates", 1000, "acme", "acme"))
    await assert_ledger()


async def test_fifty_concurrent_creates_at_the_user_limit_admit_exactly_the_limit(
    app, client_for, grant, configure, engine, assert_ledger
):
    await configure(
        client_requests_per_minute=1000,
        user_creates_per_minute=7,
        max_concurrent_tasks_per_user=100,
    )
    acme = await client_for("acme")
    await grant("acme", "acme", 10_000)
    body = {"prompt": PROMPT, "model": "veo3"}
    answers = await asyncio.gather(*(acme.post("/v1/videos", json=body) for _ in range(50)))
    statuses = sorted(a.status_code for a in answers)
    odd = [a.text[:200] for a in answers if a.status_code not in (200, 429)]
    assert statuses == [200] * 7 + [429] * 43, (Counter(statuses), odd)
    assert await task_count(engine, "acme") == 7
    assert await counted(app, "creates", 7, "acme", "acme") == 7
    assert await counted(app, "client", 1000, "acme") == 50  # each once, refused or not
    await assert_ledger()


@pytest.fixture
async def own_redis(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("breaker-redis")) as server:
        yield server


@pytest.fixture
async def on_own_redis(
    app: Starlette, own_redis: RedisServer, settings: Settings
) -> AsyncIterator[Starlette]:
    other = create_app(settings.model_copy(update={"redis_url": own_redis.url}))
    async with other.router.lifespan_context(other):
        yield other


async def test_creates_go_on_through_script_flush_flushall_and_a_redis_restart(
    on_own_redis, own_redis, client_for, grant, configure, engine, assert_ledger
):
    """Creates on an API whose Redis loses its scripts, its data, then itself: every
    answer a 200 (fail open), none a 500, one task per 200, the ledger exact."""
    await configure(
        client_requests_per_minute=100_000,
        user_creates_per_minute=100_000,
        max_concurrent_tasks_per_user=1000,
    )
    acme = await client_for("acme")
    await grant("acme", "acme", 100_000)
    body = {"prompt": PROMPT, "model": "veo3"}
    answers: list[httpx.Response] = []
    async with _client(on_own_redis, acme.api_key) as api:

        async def burst(n: int) -> None:
            answers.extend(
                await asyncio.gather(*(api.post("/v1/videos", json=body) for _ in range(n)))
            )

        redis = Redis.from_url(own_redis.url)
        try:
            await burst(5)
            await asyncio.gather(burst(10), redis.script_flush())
            await asyncio.gather(burst(10), redis.flushall())
            await redis.script_flush()
            await burst(5)  # NOSCRIPT, then loaded again
        finally:
            await redis.aclose()
        await asyncio.gather(burst(10), asyncio.to_thread(own_redis.stop))
        await burst(5)  # Redis gone
        await asyncio.to_thread(own_redis.start)
        await burst(5)  # back: a new connection, no scripts
        deadline = time.monotonic() + 5
        while await counted(on_own_redis, "client", 100_000, "acme") == 0:
            assert time.monotonic() < deadline, "the limits never counted again after a restart"
            await burst(1)
    statuses = [a.status_code for a in answers]
    assert statuses == [200] * len(answers), [(a.status_code, a.text[:200]) for a in answers]
    assert await task_count(engine, "acme") == len(answers)
    await assert_ledger()


async def test_a_create_cut_by_its_body_deadline_or_a_disconnect_counts_one_request(
    app, settings, client_for, configure
):
    """Raw ASGI: a body that never comes (408 at the deadline) and a client that goes away
    before its body each count one client request."""
    await configure(client_requests_per_minute=CLIENT_RATE)
    acme = await client_for("acme")
    quick = create_app(settings.model_copy(update={"body_timeout_seconds": 0.3}))
    scope = raw_create_scope(f"Bearer {acme.api_key}", 100)
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def never() -> Any:
        await asyncio.Event().wait()

    async def gone() -> Any:
        return {"type": "http.disconnect"}

    async with quick.router.lifespan_context(quick):
        for name, receive in (("deadline", never), ("disconnect", gone)):
            sent.clear()
            before = await counted(app, "client", CLIENT_RATE, "acme")
            try:
                await asyncio.wait_for(quick(dict(scope), receive, send), 5)
            except Exception as exc:  # noqa: BLE001 (a disconnect may end the app so)
                print(name, "ended with", type(exc).__name__)
            statuses = [m.get("status") for m in sent if m["type"] == "http.response.start"]
            print(name, "answered", statuses)
            after = await counted(app, "client", CLIENT_RATE, "acme")
            assert after - before == 1, (name, before, after, statuses)


async def test_concurrent_retries_with_one_key_are_never_limited_by_the_users_creates(
    app, client_for, grant, configure, engine, assert_ledger
):
    await configure(
        client_requests_per_minute=CLIENT_RATE,
        user_creates_per_minute=3,
        max_concurrent_tasks_per_user=100,
    )
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    body = {"prompt": PROMPT, "model": "veo3"}
    key = {"Idempotency-Key": "retried-at-once"}
    answers = await asyncio.gather(
        *(acme.post("/v1/videos", json=body, headers=key) for _ in range(20))
    )
    assert await task_count(engine, "acme") == 1
    await assert_ledger()
    odd = [(a.status_code, a.text[:160]) for a in answers if a.status_code != 200]
    assert not odd, (len(odd), odd[:2])
    assert await counted(app, "creates", 3, "acme", "acme") == 1


async def test_one_key_counts_once_and_never_lets_a_create_past_the_limit(
    app, client_for, grant, configure, engine, assert_ledger
):
    """The kind around the retries above: what a key's first hit counted is what its
    retries skip, and nothing more. A refused key keeps no token (its retries are refused
    too), distinct keys are distinct creates, and a key whose first try failed is not
    counted twice when retried."""
    await configure(
        client_requests_per_minute=CLIENT_RATE,
        user_creates_per_minute=3,
        max_concurrent_tasks_per_user=100,
    )
    acme = await client_for("acme")
    body = {"prompt": PROMPT, "model": "veo3"}

    def keyed(key: str, **change: Any) -> Any:
        return acme.post("/v1/videos", json={**body, **change}, headers={"Idempotency-Key": key})

    # Without credits the first try fails (402) after it was counted; its retry, once
    # credits arrive, creates without counting again.
    assert_problem(await keyed("first-poor"), 402, "insufficient_credits")
    await grant("acme", "acme", 1000)
    assert (await keyed("first-poor")).status_code == 200
    assert await counted(app, "creates", 3, "acme", "acme") == 1
    # Another body under a key that has answered is refused as a reuse, uncounted.
    assert_problem(await keyed("first-poor", prompt="other"), 422, "idempotency_key_reused")
    # Distinct keys at once: only what the limit leaves (3 - 1 = 2) get through.
    answers = await asyncio.gather(*(keyed(f"distinct-{i}") for i in range(10)))
    assert sorted(a.status_code for a in answers) == [200] * 2 + [429] * 8
    assert await task_count(engine, "acme") == 3
    # Over the limit: every retry of a new key is refused, none creates.
    answers = await asyncio.gather(*(keyed("over") for _ in range(10)))
    for answer in answers:
        assert_problem(answer, 429, "rate_limited")
    assert await task_count(engine, "acme") == 3
    # The keys that made videos still replay them.
    assert (await keyed("first-poor")).status_code == 200
    assert await counted(app, "creates", 3, "acme", "acme") == 3
    await assert_ledger()
