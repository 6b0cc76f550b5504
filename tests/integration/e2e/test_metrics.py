"""``/metrics`` of a real API process and a real worker process after a video went from
create to stored to its webhook: every metric the service exports is there, with values
the run explains (README, "Metrics")."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cli.supervise import HOST, free_port
from tests.deploy.queries import closed_values, exported_labels, referenced_names
from tests.eventually import eventually
from tests.integration.conftest import ADMIN_KEY
from tests.integration.e2e.conftest import _bucket
from tests.integration.e2e.helpers import finished
from tests.integration.receiver import Receiver
from tests.integration.stack import Stack, base_env, simulator
from tests.integration.test_openai_sdk import Api, start_api

PRICE = 100
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def served(
    pg_url: str, redis_url: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, Api, str]]:
    """The simulator, one worker serving its health port and one API process."""
    log_dir = tmp_path_factory.mktemp("metrics-logs")
    with simulator(log_dir) as sim_url:
        env = {
            **base_env(pg_url, redis_url, _bucket(s3_endpoint), sim_url),
            "GOOGLE_VIDEO_ADMIN_KEY": ADMIN_KEY,
            "GOOGLE_VIDEO_API_KEY_CACHE_SECONDS": "0",
            "GOOGLE_VIDEO_DATA_DIR": str(log_dir),
            "GOOGLE_VIDEO_WORKER_HEALTH_HOST": HOST,
        }
        stack = Stack(env, sim_url, log_dir)
        port = free_port()
        stack.start_worker({"GOOGLE_VIDEO_WORKER_HEALTH_PORT": str(port)})
        try:
            with contextlib.contextmanager(start_api)(env, log_dir / "api.log") as api:
                yield stack, api, f"http://{HOST}:{port}"
        finally:
            stack.stop_workers()


@pytest.fixture(scope="module")
def stack(served: tuple[Stack, Api, str]) -> Stack:
    """The e2e fixtures' stack (their in-process app shares its database and Redis)."""
    return served[0]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples carrying ``labels`` (others any), 0 without one."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


async def test_api_and_worker_metrics_after_a_video_completes(
    served: tuple[Stack, Api, str], acme: httpx.AsyncClient, receiver: Receiver, tmp_path: Path
) -> None:
    _, api, worker_url = served
    headers = {"Authorization": acme.headers["authorization"]}
    async with httpx.AsyncClient(base_url=api.base_url, headers=headers, timeout=30) as real:
        body = {"prompt": "a fox [sim:duration=1]", "webhook_url": receiver.url()}
        created = (await real.post("/v1/videos", json=body)).json()
        video = await finished(real, created["id"])
        assert video["status"] == "completed", video
        await receiver.wait_for("/hook", 1)
        assert (await real.get("/no/such/path")).status_code == 404
        # One video that keeps running: the tasks gauge has an active task to count.
        long = (await real.post("/v1/videos", json={"prompt": "[sim:duration=100000]"})).json()
        model = video["model"]

        api_metrics = await scrape(api.base_url)
        requests = "google_video_http_requests_total"
        assert value(api_metrics, requests, method="POST", route="/v1/videos", status="200") == 2
        polled = value(api_metrics, requests, method="GET", route="/v1/videos/{video_id}")
        assert polled >= 1
        assert value(api_metrics, requests, route="unmatched", status="404") == 1
        assert not any("no/such" in dict(ls).get("route", "") for _, ls in api_metrics)
        duration = "google_video_http_request_duration_seconds_count"
        assert value(api_metrics, duration, method="GET", route="/v1/videos/{video_id}") == polled
        assert value(api_metrics, "google_video_tasks_created_total", model=model) == 2
        assert value(api_metrics, "google_video_credits_total", action="held") == 2 * PRICE
        assert value(api_metrics, "google_video_webhook_deliveries_pending") in (0, 1)
        active = await eventually(
            lambda: scrape(api.base_url),
            10,
            until=lambda s: value(s, "google_video_tasks", model=model) == 1,
            what="the running video in google_video_tasks",
        )
        statuses = {dict(ls)["status"] for n, ls in active if n == "google_video_tasks"}
        assert statuses <= {"queued", "submitting", "running"}
        oldest = "google_video_tasks_oldest_age_seconds"
        assert {dict(ls)["status"] for n, ls in active if n == oldest} == statuses
        assert 0 <= value(active, oldest) < 60
        # The completed video's hold was captured; the running one's is still held.
        assert value(active, "google_video_credits_held") == PRICE

    worker = await eventually(
        lambda: scrape(worker_url),
        10,
        until=lambda s: (
            value(s, "google_video_reconciler_runs_total") >= 1
            and value(s, "google_video_webhook_deliveries_total", outcome="delivered") == 1
        ),
        what="the worker's counters",
    )
    upstream = "google_video_upstream_requests_total"
    for op in ("submit", "poll", "download"):
        assert value(worker, upstream, provider="gateway", operation=op, outcome="ok") >= 1, op
    timed = "google_video_upstream_request_duration_seconds_count"
    assert value(worker, timed, operation="submit") == value(worker, upstream, operation="submit")
    assert value(worker, "google_video_store_bytes_total") == video["video_bytes"]
    assert value(worker, "google_video_store_duration_seconds_count", outcome="ok") == 1
    finished_total = "google_video_tasks_finished_total"
    assert value(worker, finished_total, status="completed", model=model) == 1
    assert value(worker, "google_video_credits_total", action="captured") == PRICE
    polls = value(worker, "google_video_task_polls_sum", status="completed")
    assert polls >= 1 and value(worker, "google_video_task_polls_count", status="completed") == 1
    lag = value(worker, "google_video_completion_lag_seconds_sum", model=model)
    assert 0 <= lag < 30
    assert value(worker, "google_video_completion_lag_seconds_count", model=model) == 1
    # Deferred polls of the running video sit in arq:queue; none of them is due long.
    assert value(worker, "google_video_queue_jobs_deferred") >= 0
    assert "google_video_queue_jobs_due" in names(worker)
    assert 0 <= value(worker, "google_video_queue_oldest_due_job_age_seconds") < 30
    assert long["status"] == "queued"
    # What the alert rules, the dashboard and KEDA's triggers read is what a real API and
    # worker serve (every histogram's _bucket/_sum/_count included).
    missing = referenced_names() - names(active) - names(worker)
    assert not missing, f"deploy/ reads metrics nobody serves: {sorted(missing)}"
    # The label names and closed value sets the deploy gate checks the queries against
    # (tests/deploy/queries.py, from the code) are those the real processes serve.
    labels, closed = exported_labels(), closed_values()
    for (name, pairs), _ in [*active.items(), *worker.items()]:
        if name.startswith("google_video_"):
            assert dict(pairs).keys() <= labels[name], (name, pairs)
            for label, given in pairs:
                assert given in closed.get((name, label), {given}), (name, label, given)
