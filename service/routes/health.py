"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.repo.health import ping
from service.context import ctx


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    context = ctx(request)

    async def database() -> None:
        async with context.engine.connect() as conn:
            await ping(conn)

    async def redis() -> None:
        await context.queue.ping()

    checks = {"database": database(), "redis": redis(), "storage": context.storage.check()}
    results = await asyncio.gather(
        *(asyncio.wait_for(c, timeout=3) for c in checks.values()), return_exceptions=True
    )
    report = {
        name: "ok" if not isinstance(r, BaseException) else f"error: {type(r).__name__}"
        for name, r in zip(checks, results, strict=True)
    }
    ok = all(v == "ok" for v in report.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": report}, status_code=200 if ok else 503
    )


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
