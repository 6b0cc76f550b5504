"""The one-round-trip enqueue (core.queue_script) writes what ARQ writes: a real ARQ worker
runs its jobs, and a job id ARQ would refuse is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq import Worker
from arq.constants import default_queue_name, job_key_prefix, result_key_prefix
from arq.jobs import deserialize_job_raw
from arq.worker import func

from core.queue_codec import ARQ_CODEC, queue_client
from core.queue_script import enqueue_job


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    client = queue_client(redis_url, connect_timeout=2, timeout=5)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


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
