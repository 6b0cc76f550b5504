"""ARQ's ``enqueue_job``, and its worker's claim of a job, in one Redis round trip each.

ARQ enqueues with WATCH, EXISTS, then MULTI/PSETEX/ZADD/EXEC: three round trips. This
Lua script does the same steps atomically in one (EVALSHA; the script is sent once per
Redis, when it reports NOSCRIPT). What it writes is exactly what ARQ writes (arq 0.28,
``ArqRedis.enqueue_job``): the job under ``arq:job:<id>`` serialized by the client's
``job_serializer`` with ``arq.jobs.serialize_job``, expiring after the defer time plus the
client's ``expires_extra_ms``, and the id in the client's queue scored by when it is due
(ms). A job whose job key or result key exists is refused, as ARQ refuses it. ARQ
workers run these jobs unchanged.

A worker claims a job the same way (:func:`claim_job`): ARQ's ``Worker.start_jobs`` makes
four round trips per job (WATCH, EXISTS, ZSCORE, MULTI/PSETEX/EXEC), the claim script one,
with the same checks and the same ``arq:in-progress:<id>`` key. A finished job whose
result is not kept is cleared in one script too (:func:`clear_finished_job`), the keys
ARQ's ``Worker.finish_job`` MULTI/EXEC clears, without its per-command replies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from typing import Any, cast

from arq.connections import ArqRedis
from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.jobs import serialize_job
from arq.utils import timestamp_ms, to_ms
from redis.exceptions import NoScriptError

# KEYS: job key, result key, queue. ARGV: expiry (ms), serialized job, score (ms), job id.
ENQUEUE = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
    return 0
end
redis.call('PSETEX', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
"""
ENQUEUE_SHA = hashlib.sha1(ENQUEUE.encode(), usedforsecurity=False).hexdigest()

# KEYS: in-progress key, queue. ARGV: job id, now (ms), in-progress expiry (ms).
CLAIM = """
if redis.call('EXISTS', KEYS[1]) > 0 then
    return false
end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then
    return false
end
redis.call('PSETEX', KEYS[1], ARGV[3], '1')
return score
"""
CLAIM_SHA = hashlib.sha1(CLAIM.encode(), usedforsecurity=False).hexdigest()

# KEYS: in-progress key, retry key, job key, abort set, queue. ARGV: job id.
CLEAR = """
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
"""
CLEAR_SHA = hashlib.sha1(CLEAR.encode(), usedforsecurity=False).hexdigest()


async def enqueue_job(
    redis: ArqRedis,
    function: str,
    *args: Any,
    job_id: str,
    defer_by: float | None = None,
    queue_name: str | None = None,
) -> bool:
    """Enqueue ``function(*args)`` under ``job_id`` on ``queue_name`` (the client's
    default queue), due ``defer_by`` seconds from now (None or 0: now). False when a job
    with that id is queued or running, or its result is kept (ARQ's ``None``).

    Raises what the Redis client raises (``RedisError``, ``OSError``, timeouts) and
    ``arq.jobs.SerializationError`` for arguments the serializer refuses.
    """
    enqueued_ms = timestamp_ms()
    defer_ms = to_ms(defer_by)
    score = enqueued_ms + defer_ms if defer_ms else enqueued_ms
    expires_ms = score - enqueued_ms + redis.expires_extra_ms
    job = serialize_job(function, args, {}, None, enqueued_ms, serializer=redis.job_serializer)
    queue = queue_name or redis.default_queue_name
    # redis-py's annotations say str; it sends ints and bytes as they are.
    words: list[Any] = [job_key_prefix + job_id, result_key_prefix + job_id, queue]
    words += [expires_ms, job, score, job_id]
    return bool(await _run(redis, ENQUEUE, ENQUEUE_SHA, 3, words))


async def claim_job(
    redis: ArqRedis, job_id: str, queue_name: str, in_progress_ms: int
) -> int | None:
    """Mark ``job_id`` in progress for ``in_progress_ms`` and return its queue score (ms,
    when it was due), as ``arq.worker.Worker.start_jobs`` (0.28) does; None, claiming
    nothing, when ARQ would skip it: it is in progress (another worker has it), no longer
    in ``queue_name``, or not due yet by this clock (re-enqueued with a delay).

    Raises what the Redis client raises (``RedisError``, ``OSError``, timeouts).
    """
    words: list[Any] = [in_progress_key_prefix + job_id, queue_name]
    words += [job_id, timestamp_ms(), in_progress_ms]
    score = await _run(redis, CLAIM, CLAIM_SHA, 2, words)
    return None if score is None else int(float(score))


async def clear_finished_job(redis: ArqRedis, job_id: str, queue_name: str) -> None:
    """Forget a finished job whose result is not kept: delete its in-progress, retry and
    job keys and take it off the abort set and ``queue_name``, what
    ``arq.worker.Worker.finish_job`` (0.28) does for ``finish`` without result data or a
    kept in-progress key.

    Raises what the Redis client raises (``RedisError``, ``OSError``, timeouts).
    """
    keys = [in_progress_key_prefix + job_id, retry_key_prefix + job_id, job_key_prefix + job_id]
    await _run(redis, CLEAR, CLEAR_SHA, 5, [*keys, abort_jobs_ss, queue_name, job_id])


async def _run(redis: ArqRedis, script: str, sha: str, keys: int, words: list[Any]) -> Any:
    """EVALSHA ``sha``, sending ``script`` itself when Redis does not have it (NOSCRIPT:
    first use, a restart, SCRIPT FLUSH)."""
    try:
        return await cast("Awaitable[Any]", redis.evalsha(sha, keys, *words))
    except NoScriptError:
        return await cast("Awaitable[Any]", redis.eval(script, keys, *words))
