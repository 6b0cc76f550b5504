"""When a job's next step happens: poll pacing from the settings, and due times."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from schemas.clock import utcnow
from worker.context import WorkerContext
from worker.schedule import Pacing
from worker.upstream.registry import Provider


def pacing(context: WorkerContext, provider: Provider | None = None) -> Pacing:
    """The poll schedule. Polling is ``callback_poll_factor`` times sparser only where a
    callback will come: ``CALLBACK_URL`` is set, ``provider`` calls back, and callbacks
    have been seen arriving (``context.callbacks``, read by :func:`poll_pacing`). Without a
    provider (backoff only), the factor is 1."""
    s = context.settings
    calls_back = (
        bool(s.callback_url)
        and provider is not None
        and provider.calls_back
        and context.callbacks.arriving
    )
    factor = s.callback_poll_factor if calls_back else 1.0
    return Pacing(
        s.poll_first_delay,
        s.poll_min_interval,
        s.poll_max_interval,
        s.retry_base_seconds,
        factor,
        s.upstream_retry_after_max_seconds,
        s.poll_budget_interval,
    )


async def poll_pacing(context: WorkerContext, provider: Provider) -> Pacing:
    """:func:`pacing` for the next poll of a task on ``provider``, after refreshing the
    evidence that callbacks arrive (one Redis read per worker per 30 s at most)."""
    if context.settings.callback_url and provider.calls_back:
        await context.callbacks.refresh(context.redis)
    return pacing(context, provider)


def lateness(ctx: Mapping[str, Any]) -> float:
    """Seconds since the running job was due (its lateness at start plus its own time so
    far; 0 if unknown): now minus ARQ's queue score (``ctx["score"]``, ms since the epoch,
    the job's due time by the enqueuer's clock)."""
    score = ctx.get("score")
    if not isinstance(score, int | float) or isinstance(score, bool):
        return 0.0
    return max(0.0, time.time() - score / 1000)


def later(seconds: float) -> datetime:
    """``seconds`` from now, for ``next_attempt_at``."""
    return utcnow() + timedelta(seconds=seconds)


def due_after(context: WorkerContext, delay: float) -> datetime:
    """When the reconciler may take over a step enqueued ``delay`` seconds from now."""
    return later(delay + context.settings.reconcile_grace_seconds)
