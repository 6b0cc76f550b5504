"""The worker's health as the process sees it, and the HTTP server that reports it.

``WorkerHealth`` is written by the supervisor and the ARQ loop (``worker/supervisor.py``)
and read by the probes; every change of a dependency's state is logged once (never a
line per retry). The server (``WORKER_HEALTH_PORT``, off when 0) is a Starlette app under
uvicorn in the worker's own event loop:

- ``GET /healthz``: 200 while the process runs (its event loop answers);
- ``GET /readyz``: 200 only while the ARQ loop polls Redis and the database answers;
  otherwise 503 naming what is degraded;
- ``GET /metrics``: Prometheus's text format, this worker's counters and the queue's
  gauges (``worker/metrics.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from enum import StrEnum

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.metrics import CONTENT_TYPE, exposition
from core.outages import redis_failed
from schemas.api import Health, Readiness
from worker.metrics import QueueGauges

log = structlog.get_logger(__name__)

# The ARQ loop polls Redis every 50 ms: this long without a successful poll means it is
# stuck (a Redis that stopped answering without closing its connections).
STALE_POLL_SECONDS = 10.0
NOT_CHECKED = "not checked yet"
METRICS_READ_SECONDS = 2.0


class Dependency(StrEnum):
    REDIS = "redis"
    DATABASE = "database"


class Phase(StrEnum):
    STARTING = "starting"  # connecting, seeding the runtime config
    RUNNING = "running"
    STOPPING = "stopping"  # a signal came: draining the running jobs


class WorkerHealth:
    """Whether each dependency answers, and what the worker is doing; ``ready`` when
    both answer while it runs. Times are ``time.monotonic()`` seconds."""

    def __init__(self) -> None:
        self.phase = Phase.STARTING
        self._errors: dict[Dependency, str] = {d: NOT_CHECKED for d in Dependency}
        self._down_since: dict[Dependency, float] = {d: time.monotonic() for d in Dependency}
        self._last_poll: float | None = None
        # Set by a job that met a database error: the watch checks at once.
        self.database_suspect = asyncio.Event()

    def is_up(self, dependency: Dependency) -> bool:
        return dependency not in self._errors

    def up(self, dependency: Dependency) -> None:
        """``dependency`` answered; logs a recovery (and the outage's length) once."""
        error = self._errors.pop(dependency, None)
        since = self._down_since.pop(dependency, None)
        if error not in (None, NOT_CHECKED) and since is not None:
            seconds = round(time.monotonic() - since, 2)
            log.info("dependency_up", dependency=str(dependency), down_seconds=seconds)

    def down(self, dependency: Dependency, error: BaseException | str) -> None:
        """``dependency`` failed with ``error``; logs the first failure only."""
        if self._errors.get(dependency, NOT_CHECKED) != NOT_CHECKED:
            return
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        detail = (text.splitlines() or [""])[0]  # SQLAlchemy appends the SQL and a link
        self._errors[dependency] = detail[:300]
        self._down_since[dependency] = time.monotonic()
        log.warning("dependency_down", dependency=str(dependency), error=detail[:300])

    def polled(self) -> None:
        """The ARQ loop completed one poll of the queue (Redis answers)."""
        self._last_poll = time.monotonic()
        self.up(Dependency.REDIS)

    def checks(self) -> dict[str, str]:
        """Each dependency's state ("ok" or its error) and the worker's phase."""
        result = {str(d): self._errors.get(d, "ok") for d in Dependency}
        since = None if self._last_poll is None else time.monotonic() - self._last_poll
        if result[Dependency.REDIS] == "ok" and since is not None and since > STALE_POLL_SECONDS:
            result[Dependency.REDIS] = f"error: no successful queue poll for {since:.0f} s"
        result["worker"] = str(self.phase)
        return result

    def readiness(self) -> Readiness:
        checks = self.checks()
        failing = [name for name in map(str, Dependency) if checks[name] != "ok"]
        if self.phase != Phase.RUNNING:
            failing.append("worker")
        status = "unavailable" if failing else "ok"
        return Readiness(status=status, checks=checks, degraded=failing)


def health_app(health: WorkerHealth, queue: QueueGauges | None = None) -> Starlette:
    """The probe routes over ``health``, and ``/metrics`` (with ``queue``'s gauges when
    given)."""

    async def healthz(_request: Request) -> Response:
        return JSONResponse(Health(status="ok").model_dump(mode="json"))

    async def readyz(_request: Request) -> Response:
        body = health.readiness()
        code = 200 if body.status == "ok" else 503
        return JSONResponse(body.model_dump(mode="json"), status_code=code)

    async def metrics(_request: Request) -> Response:
        extra = []
        if queue is not None:
            try:
                await asyncio.wait_for(queue.refresh(), METRICS_READ_SECONDS)
                extra.append(queue)
            except Exception as exc:
                if not (isinstance(exc, TimeoutError) or redis_failed(exc)):
                    raise
                # Redis is down (readyz says so): the counters are still worth a scrape.
        return Response(exposition(*extra), media_type=CONTENT_TYPE)

    routes = [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]
    return Starlette(routes=routes)


class _InLoopServer(uvicorn.Server):
    """uvicorn inside the worker's loop: the worker owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HealthServer:
    """``app`` served on ``host:port``. The socket is bound at construction, so a port
    in use fails the start-up at once (``OSError``)."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self.socket = socket.create_server((host, port))
        self.socket.setblocking(False)
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            http="h11",
            ws="none",
        )
        self._server = _InLoopServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        port: int = self.socket.getsockname()[1]
        return port

    def start(self) -> None:
        """Serve in the running loop until :meth:`stop`."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self.socket]))

    async def stop(self) -> None:
        if self._task is None:
            self.socket.close()
            return
        self._server.should_exit = True
        await self._task
        self._task = None
