"""``google-video worker``: one supervised ARQ worker process on uvloop."""

from __future__ import annotations

import uvloop

from schemas.settings import Settings
from worker.health import HealthServer, WorkerHealth, health_app
from worker.supervisor import Supervisor


def run_worker(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT (exit code 0), across Redis and database outages
    (``worker/supervisor.py``). A health port in use fails at once (``OSError``)."""
    health = WorkerHealth()
    server = None
    if settings.worker_health_port:
        app = health_app(health)
        server = HealthServer(app, settings.worker_health_host, settings.worker_health_port)
    uvloop.run(Supervisor(settings, health, server).run())
    return 0
