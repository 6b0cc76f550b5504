"""Health at a glance (the operator console) and the database-derived gauges the API's
``/metrics`` exports with it, computed by the same functions so the two always agree.

- queue backlog: :func:`core.queue_depth.queue_depth` (the worker's queue gauges);
- tasks by active status: ``tasks.active_tasks`` (``google_video_tasks``);
- webhook backlog: ``events.pending_count`` (``google_video_webhook_deliveries_pending``);
- completion lag over the last :data:`LAG_WINDOW`: :func:`recent_figures`
  (``google_video_recent_completion_lag_seconds{quantile}``);
- upstream error ratio over the last :data:`ERROR_WINDOW`: :func:`recent_figures`
  (``google_video_upstream_error_ratio{provider}``).

The worker's own completion-lag histogram and upstream request counters hold the same
facts per worker process; the API cannot read them, so these come from the tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.queue_depth import QueueDepth, queue_depth
from core.repo.activity import Calls, upstream_calls
from core.repo.events import pending_count
from core.repo.tasks import active_tasks, completion_lags
from schemas.clock import utcnow
from schemas.settings import Settings

LAG_WINDOW = timedelta(hours=1)
ERROR_WINDOW = timedelta(minutes=15)
# The latest completions the lag quantiles are taken over (a busy hour has more).
LAG_SAMPLE = 5000
QUANTILES = (0.5, 0.95)


@dataclass(frozen=True, slots=True)
class RecentFigures:
    """``lag_quantiles``: quantile → seconds from the provider's finish to completed, over
    the ``lag_count`` tasks completed in :data:`LAG_WINDOW` (empty when none were);
    ``calls``: provider kind → upstream calls and errors in :data:`ERROR_WINDOW`."""

    lag_quantiles: dict[float, float]
    lag_count: int
    calls: dict[str, Calls]

    def error_ratio(self, provider: str | None = None) -> float | None:
        """Errors / calls of one provider (of all when None); None with no call."""
        chosen = [c for p, c in self.calls.items() if provider is None or p == provider]
        calls = sum(c.calls for c in chosen)
        return sum(c.errors for c in chosen) / calls if calls else None


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of non-empty ``values`` by linear interpolation between
    the closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def recent_figures(conn: AsyncConnection, now: datetime | None = None) -> RecentFigures:
    """Completion lag and upstream calls over their windows ending ``now`` (default: the
    clock's now): one indexed range read of the tasks, one of the activity rows."""
    now = now or utcnow()
    lags = await completion_lags(conn, now - LAG_WINDOW, LAG_SAMPLE)
    found = {q: quantile(lags, q) for q in QUANTILES} if lags else {}
    return RecentFigures(found, len(lags), await upstream_calls(conn, now - ERROR_WINDOW))


@dataclass(frozen=True, slots=True)
class HealthNumbers:
    """The console's health page. ``queue``: ARQ backlog; ``tasks_by_status``: active
    (not final) internal status → tasks in it; ``webhook_pending``: deliveries waiting
    for an attempt or retry; ``recent``: completion lag and upstream error ratio; ``at``:
    when the figures were read."""

    queue: QueueDepth
    tasks_by_status: dict[str, int]
    webhook_pending: int
    recent: RecentFigures
    at: datetime

    @property
    def running(self) -> int:
        """Every active task."""
        return sum(self.tasks_by_status.values())


async def health_numbers(engine: AsyncEngine, redis: ArqRedis, settings: Settings) -> HealthNumbers:
    """Read every figure now (no cache): a few database reads on one connection (the
    upstream calls' window is found by a binary search over ``task_activity``'s ids, about
    log2(rows) point reads) and three Redis reads. A database or Redis error propagates.
    ``settings`` is taken for what a figure may come to depend on (it reads none today)."""
    del settings
    at = utcnow()
    async with engine.connect() as conn:
        by_model = (await active_tasks(conn)).counts
        pending = await pending_count(conn)
        recent = await recent_figures(conn, at)
    by_status: dict[str, int] = {}
    for (status, _model), count in by_model.items():
        by_status[status] = by_status.get(status, 0) + count
    return HealthNumbers(await queue_depth(redis), by_status, pending, recent, at)
