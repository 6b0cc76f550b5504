"""How jobs travel through Redis: JSON, never pickle.

ARQ's default serializer is pickle, so anyone able to write to Redis would run code in
every worker. With this codec on both sides (the API's queue client and the workers),
a job is plain data (function name, JSON arguments, times); a payload that is not JSON
fails to decode, ARQ logs ``deserializing job … failed`` and drops it, and nothing of it
runs. Every ARQ client of the project is built here or passes :data:`ARQ_CODEC`.
"""

from __future__ import annotations

import json
from typing import Any

from arq.connections import ArqRedis

from core.redis_writes import bound_writes_in_context


def dumps(job: dict[str, Any]) -> bytes:
    """A job (or its result record) as JSON bytes; raises ``TypeError`` for arguments that
    are not JSON values. A job's result or failure (ARQ stores them beside the job) is
    written as its text: results are not read back (``keep_result=0``)."""
    return json.dumps(job, separators=(",", ":"), default=_result_text).encode()


def loads(raw: bytes) -> dict[str, Any]:
    """A job from :func:`dumps`'s bytes; raises ``ValueError`` for anything else (a
    pickle among them), which ARQ reports as a failed deserialization."""
    job = json.loads(raw)
    if not isinstance(job, dict):
        raise ValueError("a job is a JSON object")
    return job


def _result_text(value: object) -> str:
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    raise TypeError(f"{type(value).__name__} is not a JSON value")


# For ``arq.Worker(**...)`` and ``arq.create_pool(..., **...)``.
ARQ_CODEC: dict[str, Any] = {"job_serializer": dumps, "job_deserializer": loads}


def queue_client(url: str, *, connect_timeout: float, timeout: float | None = None) -> ArqRedis:
    """An ARQ client for ``url`` speaking :func:`dumps`/:func:`loads`; it connects on
    first use. ``timeout`` (seconds) bounds every command too: a Redis that accepts
    connections but hangs (stopped, swapping) must not hold a request for as long."""
    client: ArqRedis = ArqRedis.from_url(
        url, socket_connect_timeout=connect_timeout, socket_timeout=timeout
    )
    client.job_serializer, client.job_deserializer = dumps, loads
    bound_writes_in_context(client.connection_pool)
    return client
