"""``google-video worker``: one supervised ARQ worker process on uvloop."""

from __future__ import annotations

import uvloop

from schemas.settings import Settings
from worker.health import HealthServer, WorkerHealth, health_app
from worker.metrics import QueueGauges
from worker.supervisor import Supervisor


def run_worker(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT (exit code 0), across Redis and database outages
    (``worker/supervisor.py``). A health port in use fails at once (``OSError``)."""
    health = WorkerHealth()
    supervisor = Supervisor(settings, health)
    if settings.worker_health_port:
        app = health_app(health, QueueGauges(supervisor.redis))
        port = settings.worker_health_port
        supervisor.server = HealthServer(app, settings.worker_health_host, port)
    uvloop.run(supervisor.run())
    return 0
