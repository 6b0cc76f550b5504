"""HTTP metrics of the API (an ASGI middleware) and the tasks gauge computed at scrape time.

Requests are labelled by the route *template* that matched (``/v1/videos/{video_id}``),
never the raw path: a scan of random paths must not make one series per path. A request no
route matched is labelled ``unmatched``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from core.health_numbers import RecentFigures, recent_figures
from core.metrics import HTTP_DURATION, HTTP_REQUESTS, PREFIX
from core.repo.credits import held_total
from core.repo.events import pending_count
from core.repo.tasks import active_tasks
from schemas.clock import utcnow
from service.observer import RequestObserver

UNMATCHED = "unmatched"
# A scrape costs one GROUP BY over the active tasks at most this often per process.
TASKS_CACHE_SECONDS = 5.0
# The hour's completions and 15 minutes of upstream calls (``core/health_numbers.py``)
# move slowly and cost a range read each: re-read less often.
RECENT_CACHE_SECONDS = 30.0


# The methods any route answers (HEAD with GET); every other one (PROPFIND, M-SEARCH …,
# which uvicorn's parser lets through) counts as `other`, so a client cannot grow the
# label set: 35 methods times every route made 17,656 series for a tester.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics(RequestObserver):
    """Counts each answered request and times it, by method, route template and status.
    Outermost middleware: the time includes the other middlewares, the status is the one
    sent (a 500 from the last-resort handler too)."""

    unanswered = 500  # what the client sees if the app raises before answering

    def record(self, scope: Scope, status: int, started: float) -> None:
        route = route_template(scope)
        method = scope["method"] if scope["method"] in METHODS else "other"
        HTTP_REQUESTS.labels(method, route, str(status)).inc()
        HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The path template of the route that served ``scope``. The router records the matched
    endpoint in the scope; only the routes of that endpoint (one, or a few sharing a
    handler) are matched again to tell which path it was."""
    endpoint = scope.get("endpoint")
    if endpoint is None:
        return UNMATCHED
    candidates = _by_endpoint(scope.get("app")).get(endpoint, [])
    if len(candidates) == 1:
        return candidates[0][1]
    # A full match first, as the router does: a partial one is a wrong method (405).
    for wanted in (Match.FULL, Match.PARTIAL):
        for route, path in candidates:
            if route.matches(scope)[0] == wanted:
                return path
    return UNMATCHED


Indexed = dict[Any, list[tuple[BaseRoute, str]]]


def _by_endpoint(app: Any) -> Indexed:
    """The app's routes by endpoint, indexed once per app (kept on its ``state``)."""
    state = getattr(app, "state", None)
    found: Indexed | None = getattr(state, "routes_by_endpoint", None)
    if found is None:
        found = {}
        for route in getattr(app, "routes", []):
            endpoint = getattr(route, "endpoint", None) or getattr(route, "app", None)
            path = getattr(route, "path", "") or UNMATCHED
            found.setdefault(endpoint, []).append((route, path))
        if state is not None:
            state.routes_by_endpoint = found
    return found


class TaskGauge:
    """``google_video_tasks{status, model}`` (the active tasks),
    ``google_video_tasks_oldest_age_seconds{status}``, ``google_video_credits_held``,
    ``google_video_webhook_deliveries_pending``,
    ``google_video_recent_completion_lag_seconds{quantile}`` and
    ``google_video_upstream_error_ratio{provider}`` (``core/health_numbers.py``), read from
    the database at most every ``TASKS_CACHE_SECONDS``. Call :meth:`refresh` before collecting."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._counts: dict[tuple[str, str], int] = {}
        self._oldest: dict[str, datetime] = {}
        self._held = 0
        self._pending_deliveries = 0
        self._recent = RecentFigures({}, 0, {})
        self._recent_at: float | None = None
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        """Re-read the counts if the cached ones are older than the cache time; a
        database error propagates (the scrape fails, Prometheus marks the target down)."""
        async with self._lock:
            now = time.monotonic()
            if self._read_at is not None and now - self._read_at < TASKS_CACHE_SECONDS:
                return
            async with self._engine.connect() as conn:
                active = await active_tasks(conn)
                self._counts, self._oldest = active.counts, active.oldest
                self._held = await held_total(conn)
                self._pending_deliveries = await pending_count(conn)
                recent_due = (
                    self._recent_at is None or now - self._recent_at >= RECENT_CACHE_SECONDS
                )
                if recent_due:
                    self._recent = await recent_figures(conn)
                    self._recent_at = now
            self._read_at = now

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            f"{PREFIX}_tasks",
            "Tasks in each active (not final) internal status, by model.",
            labels=["status", "model"],
        )
        for (status, model), count in sorted(self._counts.items()):
            gauge.add_metric([status, model], count)
        yield gauge
        ages = GaugeMetricFamily(
            f"{PREFIX}_tasks_oldest_age_seconds",
            "How long the task longest in each active status has been in it (no sample for "
            "a status no task is in): a stuck submit or store shows here, not in the count.",
            labels=["status"],
        )
        now = utcnow()
        for status, since in sorted(self._oldest.items()):
            ages.add_metric([status], max(0.0, (now - since).total_seconds()))
        yield ages
        yield GaugeMetricFamily(
            f"{PREFIX}_credits_held",
            "Credits held over every account: reserved at create until the task's end "
            "captures or releases them (held with no active task is a ledger leak).",
            value=self._held,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_webhook_deliveries_pending",
            "Webhook deliveries not yet delivered or given up (waiting for an attempt).",
            value=self._pending_deliveries,
        )
        yield from _recent_families(self._recent)


def _recent_families(recent: RecentFigures) -> Iterator[Metric]:
    lag = GaugeMetricFamily(
        f"{PREFIX}_recent_completion_lag_seconds",
        "Quantiles (0.5, 0.95) of the time from the provider's finish to completed, over the "
        "tasks completed in the last hour (no sample when none was): from the tasks table.",
        labels=["quantile"],
    )
    for q, seconds in sorted(recent.lag_quantiles.items()):
        lag.add_metric([str(q)], seconds)
    yield lag
    ratio = GaugeMetricFamily(
        f"{PREFIX}_upstream_error_ratio",
        "Upstream calls (submits and polls) that ended in an error over those made, in the "
        "last 15 minutes, by provider (no sample for a provider not called): from the "
        "task history.",
        labels=["provider"],
    )
    for provider in sorted(recent.calls):
        value = recent.error_ratio(provider)
        if value is not None:
            ratio.add_metric([provider], value)
    yield ratio
