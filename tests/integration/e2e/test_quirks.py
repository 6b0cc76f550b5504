"""Every real-world quirk the simulator can produce, end to end (README, "Upstream
behaviour"): the API in-process, an ARQ worker and the simulator as real processes.

Each test asserts the outcome (completed with a stored MP4, or the failure code), the
credits (captured for a delivered video, released otherwise, one hold, the balance back,
`assert_ledger`) and, where it matters, what the simulator received or the worker logged.
Every prompt draws the same text with the same seed, so the simulator renders one video
for the whole module. The documented protocol's own directives (``fail``, ``poll429``,
``poll500``, ``nourl`` within the grace, ``unknown_status``, ``submit=400|500|timeout``,
``download404``) run in ``test_pipeline.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from simulator.answers import RAI_REASON
from tests.eventually import eventually
from tests.integration.e2e.conftest import running_stack
from tests.integration.e2e.helpers import (
    create,
    credits,
    finished,
    reaches,
    read_video,
    sim_stats,
    sim_tasks,
)
from tests.integration.stack import Stack

GRANT = 100_000
PRICE = 100
SEED = 7
TASK_NOT_FOUND_GRACE = 3.0
DEADLINE = 10  # the smallest task_timeout_seconds the runtime config accepts
CONFIG_CACHE_SECONDS = 1.0  # core.config_store.ConfigStore's ttl in every worker
QUIRK_ENV = {
    "GOOGLE_VIDEO_TASK_NOT_FOUND_GRACE_SECONDS": str(TASK_NOT_FOUND_GRACE),
    # Every operator problem is logged, so each test finds its own task's alert.
    "GOOGLE_VIDEO_OPERATOR_ALERT_INTERVAL_SECONDS": "0.001",
    "GOOGLE_VIDEO_LOG_FORMAT": "json",
}

SimConfig = Callable[..., Awaitable[None]]


@pytest.fixture(scope="module")
def stack(pg_url, redis_url, s3_endpoint, tmp_path_factory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("quirks-logs")
    with running_stack(pg_url, redis_url, s3_endpoint, log_dir, QUIRK_ENV) as result:
        yield result


@pytest.fixture
async def sim_config(stack: Stack) -> AsyncIterator[SimConfig]:
    """``await sim_config(key_exhausted=True)`` changes the simulator's global quirks;
    ``/_sim/reset`` restores them after the test."""
    async with httpx.AsyncClient(base_url=stack.sim_url) as sim:

        async def change(**settings: Any) -> None:
            response = await sim.post("/_sim/config", json=settings)
            assert response.status_code == 200, response.text

        try:
            yield change
        finally:
            await sim.post("/_sim/reset")


def prompt_of(directives: str) -> str:
    """A prompt running ``directives``; fast (``[sim:duration=1]``) unless they say otherwise."""
    return f"quirk [sim:duration=1] {directives}"


async def start(acme: httpx.AsyncClient, directives: str) -> dict[str, Any]:
    return await create(acme, prompt_of(directives), seed=SEED)


async def run(acme: httpx.AsyncClient, directives: str, deadline: float = 45.0) -> dict[str, Any]:
    """Create a video running ``directives`` and wait until it is final."""
    return await finished(acme, (await start(acme, directives))["id"], deadline)


async def upstream_tasks(stack: Stack, directives: str) -> list[dict[str, Any]]:
    """The simulator's tasks created for this prompt."""
    prompt = prompt_of(directives)
    return [task for task in await sim_tasks(stack) if task["prompt"] == prompt]


async def queries_of(stack: Stack, directives: str) -> int:
    """How many times the worker queried the prompt's (one) upstream task."""
    (task,) = await upstream_tasks(stack, directives)
    return int((await sim_stats(stack))["polls"][task["task_id"]])


async def assert_delivered(acme: httpx.AsyncClient, video: dict[str, Any], assert_ledger) -> None:
    """Completed with a stored MP4, captured once, nothing held."""
    assert video["status"] == "completed", video
    assert video["video_bytes"] > 1000 and len(video["video_sha256"]) == 64
    stored = await acme.get(f"/v1/videos/{video['id']}/content", params={"redirect": "0"})
    assert stored.content[4:8] == b"ftyp" and len(stored.content) == video["video_bytes"]
    await assert_settled(acme, assert_ledger, captured=True)


async def assert_failed(
    acme: httpx.AsyncClient, video: dict[str, Any], code: str, assert_ledger
) -> str:
    """Failed with ``code``, released once, the balance whole; returns the message."""
    assert video["status"] == "failed", video
    assert video["error"]["code"] == code, video["error"]
    await assert_settled(acme, assert_ledger, captured=False)
    return str(video["error"]["message"])


async def assert_settled(acme: httpx.AsyncClient, assert_ledger, *, captured: bool) -> None:
    balance, held, kinds = await credits(acme)
    assert (balance, held) == (GRANT - PRICE if captured else GRANT, 0)
    assert kinds.count("hold") == 1
    assert (kinds.count("capture"), kinds.count("release")) == ((1, 0) if captured else (0, 1))
    await assert_ledger()


def operator_alerts(stack: Stack, video_id: str) -> list[dict[str, Any]]:
    """The worker's ``upstream_operator_problem`` error logs about this video's task."""
    found = []
    for path in sorted(stack.log_dir.glob("worker-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if (
                entry.get("event") == "upstream_operator_problem"
                and entry.get("task_id") == video_id
            ):
                found.append(entry)
    return found


async def short_deadline(admin: httpx.AsyncClient) -> None:
    """Tasks created from now on time out after ``DEADLINE`` seconds."""
    response = await admin.put("/v1/admin/config", json={"task_timeout_seconds": DEADLINE})
    assert response.status_code == 200, response.text
    # Not a wait for something not to happen: the workers read the runtime config through
    # a cache, and the test's first poll must already see the short deadline.
    await asyncio.sleep(CONFIG_CACHE_SECONDS)


# --- answers that still carry the video ------------------------------------------------


@pytest.mark.parametrize(
    "directives",
    [
        pytest.param("[sim:url_at=fail_reason]", id="url-in-fail_reason"),
        pytest.param("[sim:url_at=result_url]", id="url-in-result_url"),
        pytest.param("[sim:url_at=output]", id="url-in-output"),
        pytest.param("[sim:url_at=outputs]", id="url-in-outputs"),
        pytest.param("[sim:sparse]", id="null-data-then-empty-url"),
        pytest.param("[sim:null_data=3]", id="success-envelope-with-null-data"),
        pytest.param("[sim:lowercase]", id="lower-case-statuses"),
        pytest.param(
            "[sim:queued_word=QUEUED] [sim:running_word=processing] [sim:success_word=succeeded]",
            id="other-status-words",
        ),
        pytest.param(
            "[sim:duration=50] [sim:running_word=UNKNOWN] [sim:success_word=Completed]",
            id="unknown-running-word",
        ),
        pytest.param("[sim:submit_shape=task_id]", id="submit-answer-task_id"),
        pytest.param("[sim:submit_shape=id]", id="submit-answer-id"),
        pytest.param("[sim:submit_shape=openai]", id="submit-answer-openai-video"),
    ],
)
async def test_a_video_the_answer_carries_anywhere_is_delivered_and_captured(
    acme, stack, assert_ledger, directives
):
    video = await run(acme, directives)

    await assert_delivered(acme, video, assert_ledger)
    assert len(await upstream_tasks(stack, directives)) == 1


# --- trouble on polls that passes --------------------------------------------------------


@pytest.mark.parametrize(
    "directives",
    [
        pytest.param("[sim:task_not_exist=3]", id="task_not_exist-right-after-submit"),
        pytest.param("[sim:poll429_empty=3]", id="empty-429s"),
        pytest.param("[sim:poll429=3] [sim:retry_after=0]", id="429s-retry-after-0"),
        pytest.param("[sim:poll502=3]", id="proxy-502-pages"),
        pytest.param("[sim:poll502_empty=3]", id="empty-502s"),
    ],
)
async def test_passing_trouble_on_polls_is_polled_through(acme, stack, assert_ledger, directives):
    video = await run(acme, directives)

    await assert_delivered(acme, video, assert_ledger)
    assert await queries_of(stack, directives) >= 4  # the refused queries, then the answer


@pytest.mark.parametrize(
    ("directives", "cause"),
    [
        pytest.param("[sim:poll401=3]", "quota", id="401-token-exhausted"),
        pytest.param("[sim:poll404=3]", "endpoint", id="404-page-wrong-base-url"),
    ],
)
async def test_an_operator_problem_on_polls_alerts_and_never_fails_the_running_task(
    acme, stack, assert_ledger, directives, cause
):
    video = await run(acme, directives)

    await assert_delivered(acme, video, assert_ledger)
    alerts = operator_alerts(stack, video["id"])
    assert len(alerts) >= 3, alerts  # one per refused query (the interval is ~0 here)
    assert {(a["cause"], a["op"], a["level"]) for a in alerts} == {(cause, "poll", "error")}


async def test_a_key_exhausted_mid_task_is_waited_out_and_the_video_delivered(
    acme, stack, sim_config, assert_ledger
):
    directives = "[sim:duration=400]"  # 4 s upstream: the key runs dry while it runs
    video = await start(acme, directives)
    await reaches(acme, video["id"], {"running"})
    await sim_config(key_exhausted=True)
    refused_from = await queries_of(stack, directives)

    await eventually(
        lambda: queries_of(stack, directives),
        15,
        until=lambda n: n >= refused_from + 3,
        what="three refused queries",
    )
    assert (await read_video(acme, video["id"]))["status"] == "in_progress"
    await sim_config(key_exhausted=False)

    await assert_delivered(acme, await finished(acme, video["id"]), assert_ledger)
    assert {a["cause"] for a in operator_alerts(stack, video["id"])} == {"quota"}


# --- deadlines: nothing outlives them, and nothing ends before them for the operator -----


async def test_a_refused_key_and_an_hours_retry_after_both_end_on_the_deadline(
    acme, admin, stack, assert_ledger
):
    """Side by side, to wait for one deadline: a key refused from the second query on
    (the video is done upstream at 2 s, unseen) times out there and is released; a poll
    answered 429 with ``Retry-After: 3600`` looks once more on the deadline and delivers."""
    await short_deadline(admin)
    refused, parked = (
        "[sim:duration=200] [sim:poll401_after=1]",
        "[sim:poll429=1] [sim:retry_after=3600]",
    )
    started = time.monotonic()

    timed_out, delivered = await asyncio.gather(run(acme, refused), run(acme, parked))

    assert DEADLINE - 1 <= time.monotonic() - started <= DEADLINE + 15
    assert timed_out["status"] == "failed" and timed_out["error"]["code"] == "timeout", timed_out
    assert len(operator_alerts(stack, timed_out["id"])) >= 3  # it kept looking, backing off
    assert delivered["status"] == "completed", delivered
    assert await queries_of(stack, parked) == 2  # the 429, then the last look
    balance, held, kinds = await credits(acme)
    assert (balance, held) == (GRANT - PRICE, 0)
    assert sorted(kinds) == ["capture", "grant", "hold", "hold", "release"]
    await assert_ledger()


# --- answers that end the task -------------------------------------------------------------


@pytest.mark.parametrize(
    ("directives", "code", "message"),
    [
        pytest.param(
            "[sim:failure_word=fail] [sim:fail=任务失败]",
            "upstream_failed",
            "任务失败",
            id="fail-word",
        ),
        pytest.param(
            "[sim:failure_word=expired] [sim:fail=task expired]",
            "upstream_failed",
            "task expired",
            id="expired-word",
        ),
        pytest.param(
            "[sim:openai_failure] [sim:fail=generation failed: internal]",
            "upstream_failed",
            "generation failed: internal",
            id="openai-shaped-failure",
        ),
        pytest.param(
            "[sim:openai_failure]", "safety_filtered", RAI_REASON, id="openai-shaped-rai-failure"
        ),
        pytest.param("[sim:safety]", "safety_filtered", RAI_REASON, id="safety-success-no-url"),
        pytest.param(
            "[sim:nourl=1000]",
            "upstream_no_video",
            "no video URL",
            id="success-without-url-past-grace",
        ),
    ],
)
async def test_an_answer_that_ends_the_task_fails_it_at_once_and_releases(
    acme, stack, assert_ledger, directives, code, message
):
    started = time.monotonic()

    video = await run(acme, directives)

    assert time.monotonic() - started < 40  # the task timeout is 60 s
    assert message in await assert_failed(acme, video, code, assert_ledger)
    assert len(await upstream_tasks(stack, directives)) == 1


async def test_task_not_exist_past_the_grace_is_a_lost_task(acme, assert_ledger):
    started = time.monotonic()

    video = await run(acme, "[sim:task_not_exist=100000]")

    assert time.monotonic() - started >= TASK_NOT_FOUND_GRACE - 0.5
    await assert_failed(acme, video, "upstream_task_lost", assert_ledger)


# --- submits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "outcome", ["429_busy", "429_limit", "429_empty", "503", "521", "522", "523"]
)
async def test_a_submit_that_created_no_task_is_retried_and_delivers_once(
    acme, stack, assert_ledger, outcome
):
    directives = f"[sim:submit={outcome}] [sim:submit_times=1]"
    submits_before = (await sim_stats(stack))["submits"]

    video = await run(acme, directives)

    await assert_delivered(acme, video, assert_ledger)
    assert (await sim_stats(stack))["submits"] - submits_before == 2
    assert len(await upstream_tasks(stack, directives)) == 1


@pytest.mark.parametrize("outcome", ["502", "504", "502_empty", "520", "524"])
async def test_a_proxy_answering_a_submit_is_ambiguous_and_never_resubmitted(
    acme, stack, assert_ledger, outcome
):
    directives = f"[sim:submit={outcome}]"
    submits_before = (await sim_stats(stack))["submits"]

    video = await run(acme, directives)

    message = await assert_failed(acme, video, "upstream_submit_ambiguous", assert_ledger)
    assert f"HTTP {outcome.removesuffix('_empty')}" in message
    assert (await sim_stats(stack))["submits"] - submits_before == 1
    assert len(await upstream_tasks(stack, directives)) == 1  # made upstream, never again


@pytest.mark.parametrize(
    ("outcome", "code", "said"),
    [
        pytest.param("401", "upstream_auth", "无效的令牌", id="401-bad-key"),
        pytest.param("403", "upstream_quota", "quota_not_enough", id="403-quota_not_enough"),
    ],
)
async def test_a_refused_submit_fails_naming_the_cause_and_releases(
    acme, stack, assert_ledger, outcome, code, said
):
    directives = f"[sim:submit={outcome}]"

    video = await run(acme, directives)

    assert said in await assert_failed(acme, video, code, assert_ledger)
    assert await upstream_tasks(stack, directives) == []


async def test_a_submit_that_keeps_failing_gives_up_unavailable(acme, stack, assert_ledger):
    directives = "[sim:submit=429_busy]"
    submits_before = (await sim_stats(stack))["submits"]

    video = await run(acme, directives)

    await assert_failed(acme, video, "upstream_unavailable", assert_ledger)
    assert (await sim_stats(stack))["submits"] - submits_before == 4  # SUBMIT_MAX_TRIES


async def test_a_retry_after_of_an_hour_on_a_submit_times_out_at_once(acme, stack, assert_ledger):
    directives = "[sim:submit=429] [sim:retry_after=3600]"
    submits_before = (await sim_stats(stack))["submits"]
    started = time.monotonic()

    video = await run(acme, directives)

    assert time.monotonic() - started < 40  # the task timeout is 60 s
    await assert_failed(acme, video, "timeout", assert_ledger)
    assert (await sim_stats(stack))["submits"] - submits_before == 1
