"""When a job's next step happens: poll pacing from the settings, and due times."""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.clock import utcnow
from worker.context import WorkerContext
from worker.schedule import Pacing


def pacing(context: WorkerContext) -> Pacing:
    """The poll schedule; sparser when the upstream will call back (a safety net only)."""
    s = context.settings
    factor = s.callback_poll_factor if s.public_url else 1.0
    return Pacing(
        s.poll_first_delay, s.poll_min_interval, s.poll_max_interval, s.retry_base_seconds, factor
    )


def later(seconds: float) -> datetime:
    """``seconds`` from now, for ``next_attempt_at``."""
    return utcnow() + timedelta(seconds=seconds)


def due_after(context: WorkerContext, delay: float) -> datetime:
    """When the reconciler may take over a step enqueued ``delay`` seconds from now."""
    return later(delay + context.settings.reconcile_grace_seconds)
