"""Breaker probes of the worker's one-script claim and clear (``core.queue_script``,
``worker.arq_worker``) against stock arq 0.28 on a real Redis: the same job states, the
same keys left behind, the same slots given back, whatever the claim meets."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from arq import Worker
from arq.constants import (
    abort_jobs_ss,
    default_queue_name,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.utils import timestamp_ms
from arq.worker import func
from redis.exceptions import RedisError

from core.outages import redis_failed, redis_unreachable
from core.queue_codec import ARQ_CODEC, queue_client
from core.queue_script import claim_job, enqueue_job
from tests.services import RedisServer
from worker.arq_worker import ArqWorker
from worker.health import Dependency, WorkerHealth

QUEUE = default_queue_name


async def _noop(ctx: dict[str, Any], *args: Any) -> None:
    return None


def _stock(redis: Any, **options: Any) -> Worker:
    return Worker(
        functions=[func(_noop, name="noop")],
        redis_pool=redis,
        handle_signals=False,
        keep_result=0,
        **ARQ_CODEC,
        **options,
    )


def _ours(redis: Any, **options: Any) -> ArqWorker:
    health = WorkerHealth()
    health.up(Dependency.DATABASE)
    return ArqWorker(
        health=health,
        stop=asyncio.Event(),
        functions=[func(_noop, name="noop")],
        redis_pool=redis,
        handle_signals=False,
        keep_result=0,
        **ARQ_CODEC,
        **options,
    )


async def _job_state(redis: Any, job_id: str) -> dict[str, Any]:
    """Every key about ``job_id``: its value and TTL (to the second), its scores."""
    state: dict[str, Any] = {}
    for prefix in (in_progress_key_prefix, retry_key_prefix, job_key_prefix, result_key_prefix):
        key = prefix + job_id
        if await redis.exists(key):
            ttl = await redis.pttl(key)
            value = None if prefix == job_key_prefix else await redis.get(key)  # its own "et"
            state[prefix] = (value, -1 if ttl < 0 else round(ttl / 1000))
    for zset in (abort_jobs_ss, QUEUE):
        state[zset] = await redis.zscore(zset, job_id)
    return state


async def _seed(redis: Any, job_id: str, *, score: int) -> None:
    """A job arq would be running: queued, its job key, a try counted, in progress, and
    an abort asked for."""
    assert await enqueue_job(redis, "noop", 1, job_id=job_id)
    await redis.zadd(QUEUE, {job_id: score})
    await redis.psetex(in_progress_key_prefix + job_id, 60_000, b"1")
    await redis.incr(retry_key_prefix + job_id)
    await redis.zadd(abort_jobs_ss, {job_id: 1})


FINISH_CASES = [
    args
    for args in itertools.product(
        (True, False),  # finish
        (None, b"", b"result"),  # result_data
        (None, 0.0, 60.0),  # result_timeout_s
        (False, True),  # keep_result_forever
        (None, 5_000),  # incr_score
        (None, 30.0),  # keep_in_progress (a cron job)
    )
    # arq serializes a result only when it is kept (forever, or for a while).
    if not args[1] or args[3] or args[2]
]


async def test_finish_job_leaves_what_stock_arq_leaves_for_every_argument(redis: Any) -> None:
    """Held: every combination of finish_job's arguments, ours against arq's."""
    stock, ours = _stock(redis), _ours(redis)
    score = timestamp_ms() - 1_000
    for n, args in enumerate(FINISH_CASES):
        theirs_id, ours_id = f"arq-{n}", f"ours-{n}"
        for job_id in (theirs_id, ours_id):
            await _seed(redis, job_id, score=score)
        await stock.finish_job(theirs_id, *args)
        await ours.finish_job(ours_id, *args)
        theirs_state = await _job_state(redis, theirs_id)
        ours_state = await _job_state(redis, ours_id)
        assert ours_state == theirs_state, args


CLAIM_CASES = [
    # (in progress already, queued, due in ms (None: not queued))
    (False, -1_000),
    (True, -1_000),
    (False, None),
    (False, 60_000),
    (True, 60_000),
]


@pytest.mark.parametrize(("in_progress", "due_in"), CLAIM_CASES)
async def test_start_jobs_claims_what_stock_arq_claims(
    redis: Any, in_progress: bool, due_in: int | None
) -> None:
    """Held: the same job states, claimed or skipped alike, and every slot given back."""
    started: dict[str, bool] = {}
    for name, worker in (("arq", _stock(redis, max_jobs=3)), ("ours", _ours(redis, max_jobs=3))):
        job_id = f"{name}-job"
        assert await enqueue_job(redis, "noop", 1, job_id=job_id)
        if due_in is None:
            await redis.zrem(QUEUE, job_id)
        else:
            await redis.zadd(QUEUE, {job_id: timestamp_ms() + due_in})
        if in_progress:
            await redis.psetex(in_progress_key_prefix + job_id, 60_000, b"1")
        await worker.start_jobs([job_id.encode()])
        started[name] = job_id in worker.tasks
        if started[name]:
            await worker.tasks[job_id]
        assert (worker.job_counter, worker.sem._value) == (0, 3 + 1)  # arq's max_jobs + 1
    assert started["ours"] == started["arq"]


async def test_many_claims_some_refused_some_raising_keep_the_slots(redis: Any) -> None:
    """Held: 200 ids, a third already running elsewhere, a third gone, a third due; then a
    claim Redis refuses (WRONGTYPE): no slot is lost, none is counted twice."""
    worker = _ours(redis, max_jobs=7)
    ids: list[bytes] = []
    for i in range(200):
        job_id = f"j{i}"
        assert await enqueue_job(redis, "noop", i, job_id=job_id)
        if i % 3 == 0:
            await redis.psetex(in_progress_key_prefix + job_id, 60_000, b"1")
        elif i % 3 == 1:
            await redis.zrem(QUEUE, job_id)
        ids.append(job_id.encode())
    for start in range(0, 200, 20):
        await worker.start_jobs(ids[start : start + 20])
        await asyncio.gather(*worker.tasks.values())
        assert (worker.job_counter, worker.sem._value) == (0, 7 + 1)
    await redis.set("arq:wrong-type", b"x")
    worker.queue_name = "arq:wrong-type"
    with pytest.raises(RedisError):
        await worker.start_jobs([b"j2"])
    assert (worker.job_counter, worker.sem._value) == (0, 7 + 1)


async def test_a_claim_cancelled_while_redis_pauses_writes_gives_its_slot_back(
    redis: Any, redis_url: str
) -> None:
    """Held: CLIENT PAUSE WRITE (what a failover does) holds the claim script; the ARQ
    loop is cancelled meanwhile (a stop): the slot comes back, and the job is claimable
    once the pause ends (the dropped connection's script never ran)."""
    client = queue_client(redis_url, connect_timeout=2, timeout=5)
    worker = _ours(client, max_jobs=2)
    try:
        assert await enqueue_job(redis, "noop", 1, job_id="paused")
        await client.ping()
        await redis.execute_command("CLIENT", "PAUSE", "800", "WRITE")
        claim = asyncio.create_task(worker.start_jobs([b"paused"]))
        await asyncio.sleep(0.2)
        assert not claim.done()
        claim.cancel()
        with pytest.raises(asyncio.CancelledError):
            await claim
        assert (worker.job_counter, worker.sem._value) == (0, 2 + 1)
        await asyncio.sleep(1.0)  # the pause is over
        assert not await redis.exists(in_progress_key_prefix + "paused")
        assert await claim_job(redis, "paused", QUEUE, 5_000) is not None
    finally:
        await redis.execute_command("CLIENT", "UNPAUSE")
        await client.aclose()


async def test_a_claim_caught_by_a_frozen_redis_times_out_and_gives_its_slot_back(
    tmp_path: Path,
) -> None:
    """Held: Redis stopped (SIGSTOP) with the claim in flight: the claim times out as a
    Redis error the supervisor reads as an outage, never hangs, and the slot comes back
    (stock arq 0.28 keeps it: its start_jobs gives a slot back only for a refused claim).
    The job stays queued (had Redis run the script on resuming, the in-progress key would
    expire, and the reconciler's fresh job ids route around it meanwhile)."""
    with RedisServer(tmp_path) as server:
        pid = server.pid
        assert pid is not None
        setup = queue_client(server.url, connect_timeout=2, timeout=5)
        client = queue_client(server.url, connect_timeout=1, timeout=0.5)
        worker = _ours(client, max_jobs=2)
        try:
            assert await enqueue_job(setup, "noop", 1, job_id="frozen")
            await client.ping()
            os.kill(pid, signal.SIGSTOP)
            try:
                async with asyncio.timeout(5):  # the test's own guard
                    with pytest.raises(RedisError) as raised:
                        await worker.start_jobs([b"frozen"])
            finally:
                os.kill(pid, signal.SIGCONT)
            assert redis_failed(raised.value) and redis_unreachable(raised.value)
            assert (worker.job_counter, worker.sem._value) == (0, 2 + 1)
            assert await setup.zscore(QUEUE, "frozen") is not None  # still queued: not lost
        finally:
            await client.aclose()
            await setup.aclose()
