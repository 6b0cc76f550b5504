"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.repo.health import ping
from core.storage.base import StorageError, TransientStorageError
from schemas.api import Health, Readiness
from service.context import ctx
from service.contract import Operation, Reply

# Without these the pod still serves: reads, and creates that are durable in the database
# (the reconciler enqueues them once Redis is back; inputs wait for the storage).
DEGRADABLE = ("redis", "storage")
CHECK_SECONDS = 3


async def healthz(_request: Request) -> Response:
    return JSONResponse(Health(status="ok").model_dump(mode="json"))


async def readyz(request: Request) -> Response:
    """200 unless the database is unreachable (a pod without it is useless); ``degraded``
    names every failing dependency (the database too, then with status ``unavailable``),
    as the workers' ``/readyz`` does."""
    context = ctx(request)

    async def database() -> None:
        async with context.engine.connect() as conn:
            await ping(conn)

    async def redis() -> None:
        await context.queue.ping()

    checks: dict[str, Awaitable[object]] = {
        "database": database(),
        "redis": redis(),
        "storage": context.storage.check(),
    }
    results = await asyncio.gather(
        *(asyncio.wait_for(c, timeout=CHECK_SECONDS) for c in checks.values()),
        return_exceptions=True,
    )
    report = {name: _outcome(r) for name, r in zip(checks, results, strict=True)}
    failing = [name for name, result in report.items() if result != "ok"]
    useless = [name for name in failing if name not in DEGRADABLE]
    status = "unavailable" if useless else "degraded" if failing else "ok"
    body = Readiness(status=status, checks=report, degraded=list(failing))
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if useless else 200)


def _outcome(result: object) -> str:
    """``ok``, or ``error: <type>``; a StorageError also says what the store is missing (a
    bucket that does not exist, a permission), which is the operator's to fix."""
    if not isinstance(result, BaseException):
        return "ok"
    if isinstance(result, StorageError) and not isinstance(result, TransientStorageError):
        return f"error: StorageError: {result}"
    return f"error: {type(result).__name__}"


operations = [
    Operation(
        "GET",
        "/healthz",
        healthz,
        "Liveness: the process answers",
        "operations",
        (Reply(200, "Alive.", Health),),
        auth="none",
    ),
    Operation(
        "GET",
        "/readyz",
        readyz,
        "Readiness: 503 only without the database; Redis or storage down is 'degraded'",
        "operations",
        (
            Reply(200, "Ready (status ok or degraded, naming what is degraded).", Readiness),
            Reply(503, "Not ready: the database is unreachable.", Readiness),
        ),
        auth="none",
    ),
]
