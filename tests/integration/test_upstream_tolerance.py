"""What the jobs do with the real gateway's quirks, with a real worker context (PostgreSQL,
Redis) and the real `GatewayClient`, whose transport answers from the shared corpus.

The job functions are called directly, one hop at a time; what they scheduled is read
back from the database (`next_attempt_at`, the poll bookkeeping) and from the ARQ queue
in Redis (nobody consumes it here). The simulator-driven end-to-end versions of these
situations come with the simulator's quirks.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from core.queue_codec import ARQ_CODEC
from core.repo.tasks import Task
from schemas.clock import utcnow
from schemas.settings import Settings
from tests import corpus
from tests.corpus import Answer
from tests.integration.answers.hostile import create, load
from tests.integration.e2e.helpers import credits
from worker.durations import MIN_OBSERVATIONS
from worker.jobs.poll import poll_task
from worker.jobs.submit import submit_task
from worker.lifecycle import on_shutdown, on_startup
from worker.schedule import P_LOW
from worker.upstream import registry
from worker.upstream.gateway import GatewayClient
from worker.upstream.registry import ClientOptions, Provider, Upstream

KIND = "scripted-gateway"
MODEL = "scripted-veo"
PRICE = 100
GRANT = 1000
UPSTREAM_TASK = "f0aa213c-c09e-4e19-a0e5-c698fe48acf1"
VIDEO = "https://cdn.example/videos/20250618/a5O3efr3GyiSTIMxAtXYmCWKcNPjBL.mp4"
RAI = corpus.gateway("p07_success_no_url_rai.json")
SUBMITTED = corpus.gateway("s01_submit_success_doc.json")

Ctx = dict[str, Any]


class ScriptedGateway:
    """Answers submits and polls from two queues; the last answer of each repeats."""

    def __init__(self) -> None:
        self.submit_answers: deque[Answer] = deque([SUBMITTED])
        self.poll_answers: deque[Answer] = deque([corpus.gateway("p04_in_progress.json")])
        self.requests: list[httpx.Request] = []

    def submits(self, *answers: Answer) -> None:
        self.submit_answers = deque(answers)

    def polls(self, *answers: Answer) -> None:
        self.poll_answers = deque(answers)

    def count(self, method: str) -> int:
        return sum(1 for request in self.requests if request.method == method)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.submit_answers if request.method == "POST" else self.poll_answers
        answer = answers.popleft() if len(answers) > 1 else answers[0]
        return httpx.Response(answer.status, content=answer.body, headers=answer.headers)


def answer(status: int, body: Any = b"", **headers: str) -> Answer:
    """An answer of our own; a non-ASCII header value goes out as its UTF-8 bytes."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {name: value if value.isascii() else value.encode() for name, value in headers.items()}
    return Answer(status, content, {"Content-Type": "application/json", **sent})


@pytest.fixture
def gateway() -> Iterator[ScriptedGateway]:
    script = ScriptedGateway()

    def build(base_url: str, api_key: str, options: ClientOptions) -> Upstream:
        return GatewayClient(base_url, api_key, transport=httpx.MockTransport(script.handle))

    provider = Provider(
        kind=KIND,
        title="the scripted gateway of these tests",
        build=build,
        upstream_action="google-videos",
        calls_back=False,
    )
    registry.register(provider)
    yield script
    registry.unregister(provider)


@pytest.fixture
async def acme(admin, client_for, grant, gateway) -> httpx.AsyncClient:
    models = (await admin.get("/v1/admin/config")).json()["models"]
    entry = {"id": MODEL, "provider": KIND, "provider_model": "veo3", "price": PRICE}
    access = {KIND: {"base_url": "https://gateway.test", "api_key": "sk-scripted"}}
    put = await admin.put(
        "/v1/admin/config",
        json={
            "models": [*models, entry],
            "providers": access,
            "max_concurrent_tasks_per_user": 100,
        },
    )
    assert put.status_code == 200, put.text
    client: httpx.AsyncClient = await client_for("acme")
    await grant("acme", "acme", GRANT)
    return client


@pytest.fixture
async def worker(
    engine: AsyncEngine, settings: Settings, redis_url: str
) -> AsyncIterator[Callable[..., Awaitable[Ctx]]]:
    """``await worker(**settings)``: a real worker context with those settings changed."""
    made: list[Ctx] = []

    async def make(**overrides: Any) -> Ctx:
        redis = await create_pool(RedisSettings.from_dsn(redis_url), **ARQ_CODEC)
        ctx: Ctx = {"settings": settings.model_copy(update=overrides), "redis": redis}
        await on_startup(ctx)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        await on_shutdown(ctx)
        await ctx["redis"].aclose()


async def running(ctx: Ctx, acme: httpx.AsyncClient) -> str:
    task_id = await create(acme, MODEL)
    assert await submit_task(ctx, task_id) == "submitted"
    return task_id


async def poll(ctx: Ctx, task_id: str) -> str:
    """One poll hop, with the counter the task expects now."""
    return await poll_task(ctx, task_id, (await load(ctx, task_id)).polls)


async def scheduled_in(ctx: Ctx, job_id: str) -> float:
    """Seconds from now until ARQ runs `job_id` (it must be queued)."""
    redis: ArqRedis = ctx["redis"]
    score = await redis.zscore("arq:queue", job_id)
    assert score is not None, f"{job_id} is not queued"
    return score / 1000 - time.time()


_AGE = {
    column: text(
        f"UPDATE video_tasks SET {column} = {column} - make_interval(secs => :by) WHERE id = :id"  # noqa: S608 -- fixed names
    )
    for column in ("created_at", "upstream_submit_time")
}


async def age(ctx: Ctx, task_id: str, seconds: float, *, column: str = "created_at") -> None:
    """Move the task's `column` `seconds` into the past (the deadline comes closer)."""
    async with ctx["app"].engine.begin() as conn:
        await conn.execute(_AGE[column], {"by": seconds, "id": task_id})


def poll_state(task: Task) -> dict[str, Any]:
    return dict(task.upstream_response.get("_poll", {}))


# --- submit: who answered, whose problem ------------------------------------------------


@pytest.mark.parametrize("name", ["s13_submit_504_nginx_html.html", "s15_submit_502_empty.txt"])
async def test_a_proxys_504_or_502_on_submit_is_ambiguous_and_never_resubmitted(
    worker, acme, gateway, assert_ledger, name
):
    ctx = await worker()
    gateway.submits(corpus.gateway(name), SUBMITTED)
    task_id = await create(acme, MODEL)

    assert await submit_task(ctx, task_id) == "ambiguous"

    task = await load(ctx, task_id)
    assert (task.status, task.error_code) == ("failed", "upstream_submit_ambiguous")
    assert "proxy" in (task.error_message or "")
    assert gateway.count("POST") == 1
    assert (await credits(acme))[:2] == (GRANT, 0)
    await assert_ledger()


@pytest.mark.parametrize(
    "name",
    [
        "s07_submit_429_chained_upstream.json",
        "s08_submit_429_empty_global_ratelimit.txt",
        "s11_submit_503_no_channel.json",
        "s12_submit_500_do_request_failed.json",
    ],
)
async def test_the_gateways_own_no_task_answers_are_retried(worker, acme, gateway, name):
    ctx = await worker()
    gateway.submits(corpus.gateway(name))
    task_id = await create(acme, MODEL)

    assert await submit_task(ctx, task_id) == "retry"

    task = await load(ctx, task_id)
    assert task.status == "queued"
    assert 0 < await scheduled_in(ctx, f"submit:{task_id}:1") <= 2.5  # the first backoff step


@pytest.mark.parametrize(
    ("name", "code", "said"),
    [
        ("s06_submit_403_quota_not_enough.json", "upstream_quota", "quota_not_enough"),
        ("s10_submit_401_invalid_token.json", "upstream_auth", "无效的令牌"),
    ],
)
async def test_a_refused_key_or_account_fails_the_submit_naming_the_cause(
    worker, acme, gateway, assert_ledger, name, code, said
):
    ctx = await worker()
    gateway.submits(corpus.gateway(name))
    task_id = await create(acme, MODEL)

    with capture_logs() as logs:
        assert await submit_task(ctx, task_id) == code

    task = await load(ctx, task_id)
    assert (task.status, task.error_code) == ("failed", code)
    assert said in (task.error_message or "")
    assert (await credits(acme))[:2] == (GRANT, 0)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["upstream_operator_problem"]
    assert ctx["app"].alerts.active
    assert ctx["app"].alerts.last.op == "submit"
    await assert_ledger()


# --- poll: whose problem ---------------------------------------------------------------


async def test_a_401_on_polls_backs_off_alerts_once_and_never_fails_the_running_task(
    worker, acme, gateway, assert_ledger
):
    ctx = await worker()
    task_id = await running(ctx, acme)
    gateway.polls(corpus.gateway("p19_401_token_exhausted.json"))

    delays = []
    with capture_logs() as logs:
        for _ in range(4):
            assert await poll(ctx, task_id) == "backoff"
            task = await load(ctx, task_id)
            delays.append(await scheduled_in(ctx, f"poll:{task_id}:{task.polls}"))

    task = await load(ctx, task_id)
    assert task.status == "running" and task.error_code is None
    assert poll_state(task) == {"errors": 4, "last_error": "quota_exhausted"}
    assert delays == sorted(delays) and delays[-1] > 2 * delays[0]  # backing off
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["upstream_operator_problem"]
    alerts = ctx["app"].alerts
    assert alerts.active and alerts.count == 4
    assert (alerts.last.cause, alerts.last.op, alerts.last.status) == ("quota", "poll", 401)

    gateway.polls(corpus.gateway("p01_success_doc.json"))  # the operator topped up
    assert await poll(ctx, task_id) == "finished"
    task = await load(ctx, task_id)
    assert (task.status, task.upstream_video_url) == ("storing", VIDEO)
    assert not alerts.active
    await assert_ledger()


async def test_a_401_on_a_poll_keeps_the_deadline_the_task_times_out_on_it(
    worker, acme, gateway, assert_ledger
):
    ctx = await worker()
    task_id = await running(ctx, acme)
    gateway.polls(corpus.gateway("p19_401_token_exhausted.json"))
    await age(ctx, task_id, 595)  # the default deadline is 600 s after create

    assert await poll(ctx, task_id) == "backoff"
    task = await load(ctx, task_id)
    assert await scheduled_in(ctx, f"poll:{task_id}:{task.polls}") <= 5.0  # not past it

    await age(ctx, task_id, 10)
    assert await poll(ctx, task_id) == "timeout"
    assert (await load(ctx, task_id)).error_code == "timeout"
    assert (await credits(acme))[:2] == (GRANT, 0)
    await assert_ledger()


# --- poll: what the answer says ---------------------------------------------------------


async def test_a_safety_filtered_success_without_a_video_fails_at_once_and_releases(
    worker, acme, gateway, assert_ledger
):
    ctx = await worker()
    task_id = await running(ctx, acme)
    gateway.polls(RAI)

    assert await poll(ctx, task_id) == "safety_filtered"

    task = await load(ctx, task_id)
    assert (task.status, task.error_code) == ("failed", "safety_filtered")
    assert (task.error_message or "").startswith("Veo could not generate 1 videos")
    assert (await credits(acme))[:2] == (GRANT, 0)
    await assert_ledger()


async def test_an_openai_shaped_failure_with_http_200_fails_the_task_with_its_reason(
    worker, acme, gateway
):
    ctx = await worker()
    task_id = await running(ctx, acme)
    gateway.polls(answer(200, {"status": "failed", "error": {"message": "渲染失败", "code": "x"}}))

    assert await poll(ctx, task_id) == "upstream_failed"

    task = await load(ctx, task_id)
    assert (task.error_code, task.error_message) == ("upstream_failed", "渲染失败")


async def test_success_without_a_url_gets_a_short_grace_then_fails_no_video(
    worker, acme, gateway, assert_ledger
):
    ctx = await worker(no_video_grace_polls=2)
    task_id = await running(ctx, acme)
    no_url = answer(200, {"code": "success", "data": {"status": "SUCCESS", "data": {}}})
    gateway.polls(no_url)

    for expected_count in (1, 2):
        assert await poll(ctx, task_id) == "pending"
        task = await load(ctx, task_id)
        assert poll_state(task)["no_video"] == expected_count
        # polled again soon (POLL_MIN_INTERVAL), not at the task's timeout
        assert await scheduled_in(ctx, f"poll:{task_id}:{task.polls}") <= 2.5

    assert await poll(ctx, task_id) == "upstream_no_video"
    assert (await credits(acme))[:2] == (GRANT, 0)
    await assert_ledger()


async def test_a_url_that_comes_within_the_grace_is_taken(worker, acme, gateway):
    ctx = await worker(no_video_grace_polls=2)
    task_id = await running(ctx, acme)
    no_url = answer(200, {"code": "success", "data": {"status": "SUCCESS", "data": {}}})
    gateway.polls(no_url, no_url, corpus.gateway("p09_success_result_url.json"))

    assert [await poll(ctx, task_id) for _ in range(3)] == ["pending", "pending", "finished"]
    assert (await load(ctx, task_id)).upstream_video_url == VIDEO


async def test_task_not_exist_right_after_submit_is_transient_then_terminal(
    worker, acme, gateway, assert_ledger
):
    ctx = await worker(task_not_found_grace_seconds=60)
    task_id = await running(ctx, acme)
    gateway.polls(corpus.gateway("p16_task_not_exist_400.json"))

    assert await poll(ctx, task_id) == "backoff"
    assert (await load(ctx, task_id)).status == "running"

    await age(ctx, task_id, 61, column="upstream_submit_time")
    assert await poll(ctx, task_id) == "upstream_task_lost"
    assert (await credits(acme))[:2] == (GRANT, 0)
    await assert_ledger()


async def test_an_unknown_status_word_keeps_polling_and_is_logged_once_per_task(
    worker, acme, gateway
):
    ctx = await worker()
    task_id = await running(ctx, acme)
    weird = answer(200, {"code": "success", "data": {"status": "HALF_BAKED", "progress": "30%"}})
    gateway.polls(
        corpus.gateway("p06_unknown.json"), weird, weird, corpus.gateway("p06_unknown.json")
    )

    with capture_logs() as logs:
        assert [await poll(ctx, task_id) for _ in range(4)] == ["pending"] * 4

    unknown = [e["status"] for e in logs if e["event"] == "upstream_status_unknown"]
    assert unknown == ["UNKNOWN", "HALF_BAKED"]
    assert (await load(ctx, task_id)).status == "running"


# --- Retry-After: bounded by the cap and the deadline ----------------------------------


async def test_a_huge_retry_after_on_a_poll_is_cut_to_the_cap(worker, acme, gateway):
    ctx = await worker(upstream_retry_after_max_seconds=300)
    task_id = await running(ctx, acme)
    gateway.polls(answer(429, b"", **{"Retry-After": "3600"}))

    assert await poll(ctx, task_id) == "backoff"

    task = await load(ctx, task_id)
    assert 295 < await scheduled_in(ctx, f"poll:{task_id}:{task.polls}") <= 300


async def test_a_retry_after_past_the_deadline_on_a_poll_lands_on_the_deadline(
    worker, acme, gateway
):
    ctx = await worker(upstream_retry_after_max_seconds=300)
    task_id = await running(ctx, acme)
    await age(ctx, task_id, 540)  # 60 s left
    gateway.polls(answer(429, b"", **{"Retry-After": "3600"}))

    assert await poll(ctx, task_id) == "backoff"

    task = await load(ctx, task_id)
    assert 55 < await scheduled_in(ctx, f"poll:{task_id}:{task.polls}") <= 60


@pytest.mark.parametrize("value", ["0", "-5", "soon", "²"])
async def test_a_zero_negative_or_unreadable_retry_after_means_the_normal_backoff(
    worker, acme, gateway, value
):
    ctx = await worker()
    task_id = await running(ctx, acme)
    gateway.polls(answer(429, b"", **{"Retry-After": value}))

    assert await poll(ctx, task_id) == "backoff"

    task = await load(ctx, task_id)
    assert 1.5 < await scheduled_in(ctx, f"poll:{task_id}:{task.polls}") <= 2.0  # retry_base


async def test_a_huge_retry_after_on_a_submit_is_cut_to_the_cap(worker, acme, gateway):
    ctx = await worker(upstream_retry_after_max_seconds=120)
    gateway.submits(answer(429, b"", **{"Retry-After": "3600"}))
    task_id = await create(acme, MODEL)

    assert await submit_task(ctx, task_id) == "retry"

    assert 115 < await scheduled_in(ctx, f"submit:{task_id}:1") <= 120


async def test_a_submit_retry_that_would_land_past_the_deadline_times_out_now(
    worker, acme, gateway, assert_ledger
):
    ctx = await worker(upstream_retry_after_max_seconds=300)
    gateway.submits(
        answer(503, {"code": "do_request_failed", "message": "m"}, **{"Retry-After": "120"})
    )
    task_id = await create(acme, MODEL)
    await age(ctx, task_id, 540)  # 60 s left: a retry in 120 s could only time out

    assert await submit_task(ctx, task_id) == "timeout"

    task = await load(ctx, task_id)
    assert (task.status, task.error_code) == ("failed", "timeout")
    assert gateway.count("POST") == 1
    assert (await credits(acme))[:2] == (GRANT, 0)
    await assert_ledger()


async def test_a_normal_poll_interval_never_runs_past_the_deadline(worker, acme, gateway):
    ctx = await worker(poll_max_interval=30, poll_min_interval=20)
    task_id = await running(ctx, acme)
    await age(ctx, task_id, 590)  # 10 s left; the normal interval would be 20 s or more

    assert await poll(ctx, task_id) == "pending"

    task = await load(ctx, task_id)
    assert await scheduled_in(ctx, f"poll:{task_id}:{task.polls}") <= 10
    assert task.next_attempt_at <= utcnow() + timedelta(seconds=10 + 15 + 1)


# --- pacing counts from when a hop was due, not from when it ran ----------------------


@pytest.mark.parametrize(("late", "expected"), [(0, 20), (1.5, 18.5), (60, 18)])
async def test_a_late_hop_keeps_its_chain_on_schedule_catching_up_at_most_a_tenth(
    worker, acme, gateway, late, expected
):
    ctx = await worker(poll_min_interval=20, poll_max_interval=20)
    task_id = await running(ctx, acme)
    await age(ctx, task_id, 100, column="upstream_submit_time")  # past POLL_FIRST_DELAY
    polls = (await load(ctx, task_id)).polls
    due = {"score": round((time.time() - late) * 1000)}  # ARQ's: when the hop was due

    assert await poll_task({**ctx, **due}, task_id, polls) == "pending"

    next_in = await scheduled_in(ctx, f"poll:{task_id}:{polls + 1}")
    assert next_in == pytest.approx(expected, abs=0.5)


async def test_a_late_hops_backoff_and_retry_after_still_count_from_now(worker, acme, gateway):
    ctx = await worker(upstream_retry_after_max_seconds=300)
    task_id = await running(ctx, acme)
    polls = (await load(ctx, task_id)).polls
    gateway.polls(answer(429, b"", **{"Retry-After": "40"}))
    due = {"score": round((time.time() - 30) * 1000)}

    assert await poll_task({**ctx, **due}, task_id, polls) == "backoff"

    assert 39 < await scheduled_in(ctx, f"poll:{task_id}:{polls + 1}") <= 40


# --- learned durations: what one worker learns, another's schedule uses -----------------


def finished_after(took: int) -> Answer:
    """The documented success answer for a task that finished now, ``took`` s after submit."""
    body = json.loads(corpus.gateway("p01_success_doc.json").body)
    now = int(time.time())
    body["data"].update(submit_time=now - took, finish_time=now)
    return answer(200, body)


async def test_durations_one_worker_learns_plan_the_first_poll_of_another(worker, acme, gateway):
    first, second = await worker(), await worker()
    for _ in range(MIN_OBSERVATIONS):
        task_id = await running(first, acme)
        await age(first, task_id, 100, column="upstream_submit_time")
        gateway.polls(finished_after(100))
        assert await poll(first, task_id) == "finished"

    gateway.polls(corpus.gateway("p04_in_progress.json"))
    task_id = await running(second, acme)

    # Learned by the first worker, read from Redis by the second at its submit: its first
    # poll waits for the learned low quantile (~100 s), not POLL_FIRST_DELAY (10 s).
    learned = second["app"].durations.distribution(KIND, MODEL)
    assert learned.learned and learned.median == pytest.approx(100, abs=2)
    assert await scheduled_in(second, f"poll:{task_id}:0") == pytest.approx(
        learned.low_quantile(P_LOW), abs=2
    )
