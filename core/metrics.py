"""The service's Prometheus metrics (``prometheus-client``), shared by the API and workers,
and their exposition.

Counters and histograms live in the process's default registry and are updated where the
event happens (settlement, the upstream client, the jobs). Gauges that describe shared
state (tasks by status, the queue) are computed at scrape time by the process serving
``/metrics`` (``service/metrics.py``, ``worker/metrics.py``) and passed to
:func:`exposition` as extra collectors.

Names follow Prometheus conventions: the ``google_video_`` prefix, ``_total`` on counters,
base units in the name (``_seconds``, ``_bytes``). README "Metrics" lists each with its
runbook line; ``tests/unit/test_metrics_names.py`` checks the conventions.

Several processes behind one port (uvicorn ``--workers``, gunicorn): set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory, writable by every process and emptied
at each start; the counters then go through prometheus-client's multiprocess files and
each scrape sums them over the processes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

PREFIX = "google_video"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds: API answers are milliseconds to a few seconds (uploads, streamed downloads).
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Seconds: an upstream call, or the store of a video of up to a few hundred MiB.
SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

HTTP_REQUESTS = Counter(
    f"{PREFIX}_http_requests_total",
    "API requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method and route template.",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
)
TASKS_CREATED = Counter(
    f"{PREFIX}_tasks_created_total",
    "Videos accepted by the API (credits held, task queued), by model.",
    ["model"],
)
TASKS_FINISHED = Counter(
    f"{PREFIX}_tasks_finished_total",
    "Tasks that reached a final status (completed, failed, cancelled), by model.",
    ["status", "model"],
)
TASK_POLLS = Histogram(
    f"{PREFIX}_task_polls",
    "Upstream polls a task needed, observed when it reaches a final status.",
    ["status"],
    buckets=(1, 2, 3, 5, 10, 20, 50, 100, 200, 500),
)
COMPLETION_LAG = Histogram(
    f"{PREFIX}_completion_lag_seconds",
    "From the provider's finish time to the task's completed (noticing it, storing it).",
    ["model"],
    buckets=SLOW_BUCKETS,
)
CREDITS = Counter(
    f"{PREFIX}_credits_total",
    "Credits moved by the ledger: held at create, captured or released at the task's end.",
    ["action"],
)
UPSTREAM_REQUESTS = Counter(
    f"{PREFIX}_upstream_requests_total",
    "Calls to the video provider, by provider, operation (submit, poll, check, download) "
    "and outcome (ok, transient, permanent, not_found, operator, ambiguous).",
    ["provider", "operation", "outcome"],
)
UPSTREAM_DURATION = Histogram(
    f"{PREFIX}_upstream_request_duration_seconds",
    "Time until the provider's answer (headers, for a download), by provider and operation.",
    ["provider", "operation"],
    buckets=SLOW_BUCKETS,
)
UPSTREAM_BUDGET_TOKENS = Counter(
    f"{PREFIX}_upstream_budget_tokens_total",
    "Asks for a token of the global upstream budget (UPSTREAM_RATE_LIMIT), by provider "
    "and outcome: taken (at once), booked (a slot later on; the call waits for it), "
    "denied (asked again later: a poll far from its expected finish, or a full book), "
    "local (Redis unreachable: the worker's own bucket).",
    ["provider", "outcome"],
)
UPSTREAM_BUDGET_WAIT = Counter(
    f"{PREFIX}_upstream_budget_wait_seconds_total",
    "Seconds upstream calls were put off by the global upstream budget, by provider.",
    ["provider"],
)
UPSTREAM_BUDGET_RATE = Gauge(
    f"{PREFIX}_upstream_budget_rate",
    "The budget's current effective rate in calls per second, by provider: the "
    "configured rate, halved by rate-limit answers and regrowing in quiet periods.",
    ["provider"],
    multiprocess_mode="mostrecent",
)
OPERATOR_PROBLEMS = Counter(
    f"{PREFIX}_upstream_operator_problems_total",
    "Upstream refusals only the operator can fix, by cause (auth, quota, endpoint, "
    "key_unreadable: the stored key is not under this SECRET_KEY).",
    ["cause", "operation"],
)
STORE_BYTES = Counter(
    f"{PREFIX}_store_bytes_total",
    "Bytes of finished videos copied from the provider into storage.",
)
STORE_DURATION = Histogram(
    f"{PREFIX}_store_duration_seconds",
    "Time to copy one video into storage and probe it, by outcome (ok, error).",
    ["outcome"],
    buckets=SLOW_BUCKETS,
)
WEBHOOK_DELIVERIES = Counter(
    f"{PREFIX}_webhook_deliveries_total",
    "Webhook delivery attempts, by outcome (delivered, retry, failed, disabled).",
    ["outcome"],
)
CALLBACKS = Counter(
    f"{PREFIX}_upstream_callbacks_total",
    "Upstream notify_hook calls to the API, by outcome: accepted (a poll now), ignored (the"
    " task is not in flight), throttled, unknown_token.",
    ["outcome"],
)
RECONCILER_CLAIMS = Counter(
    f"{PREFIX}_reconciler_claims_total",
    "Overdue work the reconciler claimed: a task by the status it was stuck in (queued, "
    "submitting, running, storing), expired (failed at its deadline), catch_up (queued "
    "tasks after a Redis outage), delivery, purge.",
    ["kind"],
)
RECONCILER_RUNS = Counter(
    f"{PREFIX}_reconciler_runs_total",
    "Reconciler passes completed (every worker runs one each reconcile interval).",
)


def prepare_multiprocess() -> Path:
    """Before starting several processes that serve one ``/metrics``: empty
    ``PROMETHEUS_MULTIPROC_DIR``'s files from an earlier run (prometheus-client's rule), or
    make a private temporary directory and set the variable, which the processes inherit.
    Returns the directory. Must run before those processes import prometheus-client."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    else:
        directory = Path(tempfile.mkdtemp(prefix="google-video-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


def exposition(*extra: Collector) -> bytes:
    """This process's metrics (every process's, in multiprocess mode) and ``extra``'s, in
    the text exposition format (:data:`CONTENT_TYPE`)."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        base = CollectorRegistry()
        multiprocess.MultiProcessCollector(base)  # type: ignore[no-untyped-call]
        text = generate_latest(base)
    else:
        text = generate_latest(REGISTRY)
    if not extra:
        return text
    computed = CollectorRegistry(auto_describe=False)
    for collector in extra:
        computed.register(collector)
    return text + generate_latest(computed)
