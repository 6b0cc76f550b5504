"""Nothing lost, nothing charged twice: killed workers, flushed Redis, cancels.

Faults are real: workers are SIGKILLed or SIGTERMed processes, Redis is flushed or
restarted for real. Recovery relies on the reconciler (grace 3 s in these tests),
not on ARQ's in-progress timeout (an hour here, set by the store job's timeout).
"""

from __future__ import annotations

import asyncio
import signal
import time

from arq.constants import default_queue_name
from redis.asyncio import Redis

from tests.eventually import eventually
from tests.integration.e2e.helpers import (
    create,
    credits,
    finished,
    reaches,
    sim_stats,
    sim_tasks,
)

BIG = 150 * 1024 * 1024  # slow enough to kill the worker mid-store


def _kill(stack, sig=signal.SIGKILL) -> None:
    for proc in stack.workers:
        proc.send_signal(sig)
    for proc in stack.workers:
        proc.wait(timeout=60)
    stack.workers.clear()


async def test_sigkill_during_poll_recovers_in_seconds(acme, stack, assert_ledger):
    video = await create(acme, "long job [sim:duration=4]")
    await reaches(acme, video["id"], {"running"})
    _kill(stack)
    killed_at = time.monotonic()
    stack.start_worker()
    done = await finished(acme, video["id"], deadline=30)
    assert done["status"] == "completed"
    assert time.monotonic() - killed_at < 20  # ARQ alone would wait for its in-progress key
    assert (await credits(acme))[2].count("capture") == 1
    await assert_ledger()


async def test_sigkill_during_store_completes_once(acme, stack, assert_ledger):
    video = await create(acme, f"big [sim:duration=1] [sim:size={BIG}]")
    await reaches(acme, video["id"], {"storing"})
    _kill(stack)
    stack.start_worker()
    done = await finished(acme, video["id"], deadline=90)
    assert done["status"] == "completed" and done["video_bytes"] == BIG
    balance, held, kinds = await credits(acme)
    assert (balance, held) == (100_000 - 100, 0) and kinds.count("capture") == 1
    await assert_ledger()


async def test_sigkill_during_submit_fails_as_ambiguous_and_refunds(acme, stack, assert_ledger):
    video = await create(acme, "slow gateway [sim:duration=1] [sim:submit=timeout]")
    await reaches(acme, video["id"], {"submitting"})
    _kill(stack)
    stack.start_worker()
    done = await finished(acme, video["id"], deadline=30)
    assert done["error"]["code"] == "upstream_submit_ambiguous"
    assert (await credits(acme))[:2] == (100_000, 0)
    await assert_ledger()


async def test_resubmit_policy_retries_ambiguous_submit_and_charges_once(
    acme, admin, assert_ledger
):
    await admin.put("/v1/admin/config", json={"ambiguous_submit_policy": "resubmit"})
    prompt = f"answer lost once {time.time_ns()} [sim:duration=1] [sim:submit_timeout=1]"
    done = await finished(acme, (await create(acme, prompt))["id"], deadline=40)
    assert done["status"] == "completed"
    balance, held, kinds = await credits(acme)
    assert (balance, held) == (100_000 - 100, 0)
    assert kinds.count("capture") == 1 and kinds.count("hold") == 1
    await assert_ledger()


async def test_redis_flushall_loses_nothing(acme, redis_url, assert_ledger):
    videos = [await create(acme, f"flush {n} [sim:duration=3]") for n in range(5)]
    for video in videos:
        await reaches(acme, video["id"], {"running", "submitting"})
    redis = Redis.from_url(redis_url)
    await redis.flushall()
    await redis.aclose()
    done = await asyncio.gather(*(finished(acme, v["id"], deadline=40) for v in videos))
    assert {v["status"] for v in done} == {"completed"}
    await assert_ledger()


async def test_sigterm_drains_the_running_store(acme, stack, assert_ledger):
    downloads = (await sim_stats(stack))["downloads_total"]
    video = await create(acme, f"drain [sim:duration=1] [sim:size={BIG}]")
    await reaches(acme, video["id"], {"storing"})
    await eventually(  # the store job has begun
        lambda: sim_stats(stack),
        20,
        until=lambda stats: stats["downloads_total"] != downloads,
        what="the store job's download",
    )
    (worker,) = stack.workers
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 60) == 0
    stack.workers.clear()
    done = (await acme.get(f"/v1/videos/{video['id']}")).json()
    assert done["status"] == "completed"  # finished inside the drain window, by the same worker
    stack.start_worker()
    await assert_ledger()


async def test_sigterm_past_the_drain_cancels_the_store_and_another_worker_finishes_it(
    acme, stack, assert_ledger
):
    """The documented stop bound (drain + cancel grace + closing), with a job still
    running when the drain ends: exit 0 in time, and the store is not lost."""
    _kill(stack)
    drain = 0.5
    worker = stack.start_worker({"GOOGLE_VIDEO_WORKER_DRAIN_SECONDS": str(drain)})
    downloads = (await sim_stats(stack))["downloads_total"]
    video = await create(acme, f"cut short [sim:duration=1] [sim:size={BIG}]")
    await eventually(  # the store job has begun
        lambda: sim_stats(stack),
        20,
        until=lambda stats: stats["downloads_total"] != downloads,
        what="the store job's download",
    )
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    bound = drain + 5 + 3  # drain, CANCEL_GRACE_SECONDS, closing the clients
    assert await asyncio.to_thread(worker.wait, bound) == 0, worker.log_tail()
    stopped_in = time.monotonic() - started
    stack.workers.clear()
    stack.start_worker()
    done = await finished(acme, video["id"], deadline=60)
    assert done["status"] == "completed", done
    print(f"\nSIGTERM with a store running: exit 0 in {stopped_in:.2f} s")
    await assert_ledger()


async def test_worker_survives_redis_restart(acme, stack, redis_server, assert_ledger):
    redis_server.restart()
    video = await create(acme, "after restart [sim:duration=1]")
    done = await finished(acme, video["id"], deadline=40)
    assert done["status"] == "completed"
    assert all(w.poll() is None for w in stack.workers)  # it rode the restart out
    await assert_ledger()


async def test_cancel_queued_video_releases_at_once(acme, stack, assert_ledger):
    _kill(stack)  # nothing picks the task up
    video = await create(acme, "never started")
    cancelled = (await acme.post(f"/v1/videos/{video['id']}/cancel")).json()
    assert cancelled["status"] == "failed" and cancelled["cancelled"] is True
    assert cancelled["error"]["code"] == "cancelled"
    assert (await credits(acme))[:2] == (100_000, 0)
    stack.start_worker()
    await assert_ledger()


async def test_cancel_running_stops_polling_and_ignores_late_success(
    acme, stack, redis_url, assert_ledger
):
    video = await create(acme, "cancel me [sim:duration=2]")
    running = await reaches(acme, video["id"], {"running"})
    assert running["internal_status"] == "running"
    assert (await acme.post(f"/v1/videos/{video['id']}/cancel")).status_code == 200
    polls_at_cancel = await _polls(stack)
    # Let the upstream finish (its success must not count) and every poll job of the task
    # run out: nothing is left that could poll again.
    await eventually(
        lambda: sim_tasks(stack),
        20,
        until=lambda tasks: (
            [t["status"] for t in tasks if "cancel me" in t["prompt"]] == ["SUCCESS"]
        ),
        what="the upstream task finished",
    )
    await eventually(
        lambda: _queued_polls(redis_url, video["id"]),
        20,
        until=lambda jobs: not jobs,
        what="no poll job of the task queued or running",
    )
    after = (await acme.get(f"/v1/videos/{video['id']}")).json()
    assert after["internal_status"] == "cancelled"
    assert await _polls(stack) <= polls_at_cancel + 1  # at most one in flight
    balance, held, kinds = await credits(acme)
    assert (balance, held) == (100_000, 0) and "capture" not in kinds
    await assert_ledger()


async def test_cancel_finished_video_is_409(acme):
    video = await finished(acme, (await create(acme, "quick [sim:duration=1]"))["id"])
    response = await acme.post(f"/v1/videos/{video['id']}/cancel")
    assert response.status_code == 409 and response.json()["code"] == "video_already_finished"


async def _polls(stack) -> int:
    return int((await sim_stats(stack))["polls_total"])


async def _queued_polls(redis_url: str, task_id: str) -> list[bytes]:
    """ARQ's queue holds a job from enqueue until it has finished running."""
    redis = Redis.from_url(redis_url)
    try:
        jobs = await redis.zrange(default_queue_name, 0, -1)
    finally:
        await redis.aclose()
    return [job for job in jobs if job.startswith(f"poll:{task_id}:".encode())]
