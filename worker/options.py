"""The ARQ worker options, checked against ``arq.Worker``'s signature.

ARQ silently ignores misspelled attributes of a settings class; building the options
as a dict and validating every key here turns such a typo into a start-up error.
"""

from __future__ import annotations

import inspect
import os
import socket
from typing import Any

from arq import cron, func
from arq.connections import RedisSettings
from arq.constants import default_queue_name
from arq.worker import Worker

from core import queue
from core.queue_codec import ARQ_CODEC
from schemas.settings import Settings
from worker.jobs.deliver import deliver_webhook
from worker.jobs.housekeeping import purge_activity, purge_idempotency, purge_uploads
from worker.jobs.outage import deferred_on_outage, skipped_on_outage
from worker.jobs.poll import poll_task
from worker.jobs.purge import MAX_TRIES as PURGE_MAX_TRIES
from worker.jobs.purge import purge_video
from worker.jobs.reconcile import reconcile
from worker.jobs.store import store_task
from worker.jobs.submit import submit_task
from worker.lifecycle import on_shutdown, on_startup
from worker.log_context import on_job_start

WORKER_OPTIONS = frozenset(inspect.signature(Worker.__init__).parameters) - {"self"}


# How long ARQ sleeps between looks at the queue when it found nothing to start. A job
# enqueued for now waits up to this long; a finished task passes three such waits on its
# way to the webhook (the poll a callback triggers, the store, the delivery). 25 ms keeps
# that under ~75 ms for ~40 idle queue reads a second per worker (a few % of a core).
POLL_DELAY_SECONDS = 0.025


def health_check_key() -> str:
    """``arq:queue:health-check:<host>:<pid>``: this worker's ARQ health record."""
    return f"{default_queue_name}:health-check:{socket.gethostname()}:{os.getpid()}"


class InvalidWorkerSettings(ValueError):
    pass


def validated(options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - WORKER_OPTIONS
    if unknown:
        raise InvalidWorkerSettings(f"unknown arq Worker option(s): {', '.join(sorted(unknown))}")
    return options


def worker_options(settings: Settings) -> dict[str, Any]:
    every = settings.reconcile_interval_seconds
    return validated(
        {
            "functions": [
                func(deferred_on_outage(submit_task), name=queue.SUBMIT, timeout=90, max_tries=3),
                func(deferred_on_outage(poll_task), name=queue.POLL, timeout=60, max_tries=3),
                func(
                    deferred_on_outage(deliver_webhook),
                    name=queue.DELIVER,
                    timeout=settings.webhook_timeout_seconds * 2 + 10,
                    max_tries=3,
                ),
                func(
                    deferred_on_outage(purge_video),
                    name=queue.PURGE_VIDEO,
                    timeout=300,
                    max_tries=PURGE_MAX_TRIES,
                ),
                func(
                    deferred_on_outage(store_task),
                    name=queue.STORE,
                    timeout=3600,
                    max_tries=settings.download_max_tries + 1,
                ),
            ],
            "cron_jobs": [
                cron(
                    skipped_on_outage(reconcile),
                    name=queue.RECONCILE,
                    second=set(range(0, 60, every)),
                    run_at_startup=True,
                    timeout=60,
                    unique=False,
                ),
                cron(
                    skipped_on_outage(purge_idempotency),
                    name=queue.PURGE_IDEMPOTENCY,
                    minute=17,
                    second=0,
                    timeout=300,
                ),
                cron(
                    skipped_on_outage(purge_uploads),
                    name=queue.PURGE_UPLOADS,
                    minute=set(range(2, 60, 5)),
                    second=30,
                    timeout=300,
                ),
                cron(
                    skipped_on_outage(purge_activity),
                    name=queue.PURGE_ACTIVITY,
                    minute=47,
                    second=0,
                    timeout=600,
                ),
            ],
            "redis_settings": RedisSettings.from_dsn(settings.redis_url),
            **ARQ_CODEC,
            "on_startup": on_startup,
            "on_shutdown": on_shutdown,
            "on_job_start": on_job_start,
            "ctx": {"settings": settings},
            "max_jobs": settings.worker_max_jobs,
            "keep_result": 0,
            "job_completion_wait": int(settings.worker_drain_seconds),
            "health_check_interval": 5,
            # ARQ's default key is one for every worker, deleted when any of them exits;
            # one per process (expiring with its interval) says which workers are alive.
            # Probes use the worker's own /healthz (worker/health.py), not this key.
            "health_check_key": health_check_key(),
            "poll_delay": POLL_DELAY_SECONDS,
            "handle_signals": True,
            "log_results": False,
        }
    )
