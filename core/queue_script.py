"""ARQ's ``enqueue_job`` in one Redis round trip.

ARQ enqueues with WATCH, EXISTS, then MULTI/PSETEX/ZADD/EXEC: three round trips. This
Lua script does the same steps atomically in one (EVALSHA; the script is sent once per
Redis, when it reports NOSCRIPT). What it writes is exactly what ARQ writes (arq 0.28,
``ArqRedis.enqueue_job``): the job under ``arq:job:<id>`` serialized by the client's
``job_serializer`` with ``arq.jobs.serialize_job``, expiring after the defer time plus the
client's ``expires_extra_ms``, and the id in the client's queue scored by when it is due
(ms). A job whose job key or result key exists is refused, as ARQ refuses it. ARQ
workers run these jobs unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from typing import Any, cast

from arq.connections import ArqRedis
from arq.constants import job_key_prefix, result_key_prefix
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
    try:
        added = await cast("Awaitable[int]", redis.evalsha(ENQUEUE_SHA, 3, *words))
    except NoScriptError:
        added = await cast("Awaitable[int]", redis.eval(ENQUEUE, 3, *words))
    return bool(added)
