"""The one-round-trip enqueue (core.queue_script) writes what ARQ writes: a real ARQ worker
runs its jobs, and a job id ARQ would refuse is refused. The worker's one-round-trip claim
and clear do what ARQ's start_jobs and finish_job do: each job runs once however many
workers race for it, and a finished job leaves no key behind."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import Worker
from arq.constants import (
    abort_jobs_ss,
    default_queue_name,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.jobs import deserialize_job_raw
from arq.worker import func

from core.queue_codec import ARQ_CODEC, queue_client
from core.queue_script import claim_job, clear_finished_job, enqueue_job
from worker.arq_worker import ArqWorker
from worker.health import Dependency, WorkerHealth


async def test_an_arq_worker_runs_the_job(redis: Any, redis_url: str) -> None:
    ran: list[tuple[Any, ...]] = []

    async def submit_task(ctx: dict[str, Any], task_id: str, attempt: int) -> None:
        ran.append((ctx["job_id"], ctx["job_try"], task_id, attempt))

    await redis.script_flush()  # NOSCRIPT first: the script is sent, then cached
    assert await enqueue_job(redis, "submit_task", "video_1", 3, job_id="submit:video_1")
    assert await enqueue_job(redis, "submit_task", "video_2", 0, job_id="submit:video_2")
    worker = Worker(
        functions=[func(submit_task, name="submit_task")],
        redis_pool=queue_client(redis_url, connect_timeout=2),
        burst=True,
        handle_signals=False,
        poll_delay=0.01,
        keep_result=0,
        **ARQ_CODEC,
    )
    try:
        await worker.main()
    finally:
        # Not worker.close(): arq 0.28 closes the pool with redis-py's deprecated close().
        await worker.pool.aclose(close_connection_pool=True)
    assert sorted(ran) == [("submit:video_1", 1, "video_1", 3), ("submit:video_2", 1, "video_2", 0)]


async def test_the_job_is_stored_as_arq_stores_it(redis: Any) -> None:
    await redis.enqueue_job("poll_task", "video_1", 2, _job_id="arq", _defer_by=30)
    assert await enqueue_job(redis, "poll_task", "video_1", 2, job_id="ours", defer_by=30)
    theirs, ours = [await redis.get(job_key_prefix + i) for i in ("arq", "ours")]
    f1, a1, k1, t1, et1 = deserialize_job_raw(theirs, deserializer=ARQ_CODEC["job_deserializer"])
    f2, a2, k2, t2, et2 = deserialize_job_raw(ours, deserializer=ARQ_CODEC["job_deserializer"])
    assert (f1, a1, k1, t1) == (f2, a2, k2, t2) == ("poll_task", ["video_1", 2], {}, None)
    assert ours == theirs.replace(str(et1).encode(), str(et2).encode())
    # Due 30 s after it was enqueued; kept a day past that.
    for job_id, enqueued in (("arq", et1), ("ours", et2)):
        assert await redis.zscore(default_queue_name, job_id) == enqueued + 30_000
        ttl = await redis.pttl(job_key_prefix + job_id)
        assert 86_400_000 + 25_000 < ttl <= 86_400_000 + 30_000


async def test_a_job_id_arq_refuses_is_refused(redis: Any) -> None:
    assert await enqueue_job(redis, "store_task", "video_1", job_id="store:video_1")
    assert not await enqueue_job(redis, "store_task", "video_1", job_id="store:video_1")
    assert await redis.enqueue_job("store_task", "video_1", _job_id="store:video_1") is None
    # A job ARQ enqueued, or one whose result is kept, refuses ours the same way.
    assert await redis.enqueue_job("store_task", "video_2", _job_id="store:video_2")
    assert not await enqueue_job(redis, "store_task", "video_2", job_id="store:video_2")
    await redis.set(result_key_prefix + "store:video_3", b"{}")
    assert not await enqueue_job(redis, "store_task", "video_3", job_id="store:video_3")
    assert await redis.zrange(default_queue_name, 0, -1) == [b"store:video_1", b"store:video_2"]


async def test_a_job_is_claimed_once_when_due_and_in_the_queue(redis: Any) -> None:
    await redis.script_flush()  # NOSCRIPT first
    assert await enqueue_job(redis, "poll_task", "video_1", 0, job_id="now")
    assert await enqueue_job(redis, "poll_task", "video_2", 0, job_id="later", defer_by=60)
    score = await redis.zscore(default_queue_name, "now")
    assert await claim_job(redis, "now", default_queue_name, 5_000) == int(score)
    assert 4_000 < await redis.pttl(in_progress_key_prefix + "now") <= 5_000
    # In progress: another worker's claim is refused, and leaves the key as it was.
    assert await claim_job(redis, "now", default_queue_name, 60_000) is None
    assert await redis.pttl(in_progress_key_prefix + "now") <= 5_000
    # Not due yet, not queued (finished, or another queue's): nothing is claimed.
    assert await claim_job(redis, "later", default_queue_name, 5_000) is None
    assert await claim_job(redis, "gone", default_queue_name, 5_000) is None
    assert await claim_job(redis, "now", "arq:other-queue", 5_000) is None
    assert not await redis.exists(in_progress_key_prefix + "later", in_progress_key_prefix + "gone")


async def test_clearing_a_finished_job_leaves_what_arq_leaves(redis: Any) -> None:
    for job_id in ("ours", "arq"):
        assert await enqueue_job(redis, "store_task", "video_1", job_id=job_id)
        await redis.psetex(in_progress_key_prefix + job_id, 60_000, b"1")
        await redis.incr(retry_key_prefix + job_id)
        await redis.zadd(abort_jobs_ss, {job_id: 1})
    await redis.set("unrelated", b"1")
    await clear_finished_job(redis, "ours", default_queue_name)

    async def store_task(ctx: dict[str, Any], task_id: str) -> None:
        pass

    worker = Worker(
        functions=[func(store_task, name="store_task")],
        redis_pool=redis,
        handle_signals=False,
        **ARQ_CODEC,
    )
    await worker.finish_job("arq", True, None, None, False, None, None)
    assert sorted(await redis.keys("*")) == [b"unrelated"]


async def test_racing_workers_run_each_job_once(redis: Any, redis_url: str) -> None:
    """Three of the product's ArqWorkers take the same 300 jobs (150 already due, 150
    due while they run): every job runs exactly once and no key is left behind."""
    ran: list[str] = []

    async def poll_task(ctx: dict[str, Any], task_id: str, attempt: int) -> None:
        ran.append(task_id)

    for i in range(300):
        delay = None if i % 2 else 0.5
        assert await enqueue_job(redis, "poll_task", f"v{i}", 0, job_id=f"j{i}", defer_by=delay)
    workers = []
    for _ in range(3):
        health = WorkerHealth()
        health.up(Dependency.DATABASE)
        workers.append(
            ArqWorker(
                health=health,
                stop=asyncio.Event(),
                functions=[func(poll_task, name="poll_task")],
                redis_pool=queue_client(redis_url, connect_timeout=2, timeout=5),
                burst=True,
                handle_signals=False,
                poll_delay=0.01,
                keep_result=0,
                max_jobs=20,
                **ARQ_CODEC,
            )
        )
    try:
        await asyncio.sleep(0.3)  # the deferred half comes due while the burst runs
        await asyncio.gather(*(w.main() for w in workers))
        for _ in range(100):  # a burst worker stops once the queue it saw was empty
            if not await redis.zcard(default_queue_name):
                break
            await asyncio.gather(*(w.main() for w in workers))
    finally:
        for w in workers:
            await w.pool.aclose(close_connection_pool=True)
    assert sorted(ran) == sorted(f"v{i}" for i in range(300))
    assert await redis.keys("*") == [b"arq:queue:health-check"]  # arq's, while they ran
