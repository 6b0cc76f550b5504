"""``GET /metrics``: Prometheus's text exposition of this process (every process of the pod
in multiprocess mode) and the tasks gauge.

Unauthenticated, as Prometheus scrapes by convention: it names models, routes and counts,
never a client, key or prompt. Do not route it from the public ingress (README, "Metrics").
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from core.metrics import CONTENT_TYPE, exposition
from core.outages import database_unreachable
from service.contract import Operation, Reply
from service.metrics import TaskGauge

READ_SECONDS = 3.0


async def metrics(request: Request) -> Response:
    gauge: TaskGauge = request.app.state.task_gauge
    try:
        await asyncio.wait_for(gauge.refresh(), READ_SECONDS)
    except Exception as exc:
        if not (isinstance(exc, TimeoutError) or database_unreachable(exc)):
            raise
        # The database is down (readyz says so): the counters are still worth a scrape.
        return Response(exposition(), media_type=CONTENT_TYPE)
    return Response(exposition(gauge), media_type=CONTENT_TYPE)


operations = [
    Operation(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics (text exposition format); keep it off the public ingress",
        "operations",
        (Reply(200, "The metrics.", None, ("text/plain",)),),
        auth="none",
    ),
]
