"""The log lines of a real API process and a real worker process, their stderr a file
(LOG_FORMAT=auto: JSON off a terminal): every line one JSON object, library records
(arq's, uvicorn's) included, an access line per request, exceptions inside their line, and
one request id from a create through the worker's lines for its task to its webhook
(README, "Logs")."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings

from core import queue
from core.queue_codec import ARQ_CODEC
from tests.eventually import eventually
from tests.integration.conftest import ADMIN_KEY
from tests.integration.e2e.conftest import _bucket
from tests.integration.e2e.helpers import finished
from tests.integration.receiver import Receiver
from tests.integration.stack import Stack, base_env, simulator
from tests.integration.test_openai_sdk import Api, start_api

Line = dict[str, Any]


@pytest.fixture(scope="module")
def served(
    pg_url: str, redis_url: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, Api]]:
    """The simulator, one worker and one API process, logging in the default format."""
    log_dir = tmp_path_factory.mktemp("log-lines")
    with simulator(log_dir) as sim_url:
        env = {
            **base_env(pg_url, redis_url, _bucket(s3_endpoint), sim_url),
            "GOOGLE_VIDEO_ADMIN_KEY": ADMIN_KEY,
            "GOOGLE_VIDEO_API_KEY_CACHE_SECONDS": "0",
            "GOOGLE_VIDEO_DATA_DIR": str(log_dir),
            "GOOGLE_VIDEO_LOG_FORMAT": "auto",
        }
        stack = Stack(env, sim_url, log_dir)
        stack.start_worker()
        try:
            with contextlib.contextmanager(start_api)(env, log_dir / "api.log") as api:
                yield stack, api
        finally:
            stack.stop_workers()


@pytest.fixture(scope="module")
def stack(served: tuple[Stack, Api]) -> Stack:
    """The e2e fixtures' stack (their in-process app shares its database and Redis)."""
    return served[0]


def lines(path: Path) -> list[Line]:
    """Every line of a process's output, each of which must be one JSON object (a last
    line still being written is left for the next read)."""
    parsed = []
    for text in path.read_text(errors="replace").split("\n")[:-1]:
        try:
            entry = json.loads(text)
        except ValueError:
            raise AssertionError(f"{path.name}: not a JSON line: {text!r}") from None
        assert isinstance(entry, dict), text
        assert {"event", "level", "logger", "timestamp"} <= set(entry), text
        parsed.append(entry)
    return parsed


def worker_log(stack: Stack) -> Path:
    return stack.log_dir / f"{stack.workers[0].name}.log"


async def test_one_request_id_follows_a_video_from_its_create_to_its_webhook(
    served: tuple[Stack, Api], acme: httpx.AsyncClient
) -> None:
    stack, api = served
    receiver = Receiver()
    receiver.start()
    request_id = "trace-" + secrets.token_hex(6)
    headers = {"Authorization": acme.headers["authorization"], "X-Request-ID": request_id}
    try:
        async with httpx.AsyncClient(base_url=api.base_url, headers=headers, timeout=30) as real:
            body = {"prompt": "a fox [sim:duration=1]", "webhook_url": receiver.url()}
            created = await real.post("/v1/videos", json=body)
            assert created.headers["x-request-id"] == request_id
            video_id = created.json()["id"]
            assert (await finished(real, video_id))["status"] == "completed"
        (hook,) = await receiver.wait_for("/hook", 1)
    finally:
        receiver.stop()
    assert hook.headers["x-request-id"] == request_id
    assert hook.headers["webhook-id"] and hook.headers["webhook-signature"]

    api_lines = lines(stack.log_dir / "api.log")
    access = [e for e in api_lines if e["event"] == "http_request" and e["method"] == "POST"]
    assert access, api_lines
    line = access[0]
    assert (line["request_id"], line["route"], line["status"]) == (request_id, "/v1/videos", 200)
    assert line["client_id"] == "acme" and line["remote"] == "127.0.0.1"
    assert isinstance(line["duration_ms"], float) and line["logger"] == "google_video.access"
    polls = [e for e in api_lines if e.get("route") == "/v1/videos/{video_id}"]
    assert polls and {e["request_id"] for e in polls} == {request_id}
    assert not any(video_id in str(e.get("route")) for e in api_lines)  # templates, not paths
    (made,) = [e for e in api_lines if e["event"] == "video_created"]
    assert (made["task_id"], made["request_id"]) == (video_id, request_id)

    # The delivery's line comes after the receiver answered.
    worker_lines = await eventually(
        lambda: lines(worker_log(stack)),
        10,
        until=lambda found: any(e["event"] == "webhook_attempt" for e in found),
        what="the worker's webhook_attempt line",
    )
    ours = [e for e in worker_lines if e.get("task_id") == video_id]
    events = {e["event"] for e in ours}
    assert {"submitted", "task_completed", "webhook_attempt"} <= events, events
    for event in ("submitted", "task_completed", "webhook_attempt", "upstream.response"):
        for entry in (e for e in ours if e["event"] == event):
            assert entry["request_id"] == request_id, entry
            assert entry["job"] in {queue.SUBMIT, queue.POLL, queue.STORE, queue.DELIVER}, entry
            assert entry["job_try"] >= 1 and entry["job_id"], entry
    (submitted,) = [e for e in ours if e["event"] == "submitted"]
    assert submitted["upstream_task_id"] != video_id
    # arq's own start and end lines of each of the task's jobs, with the task's id bound;
    # not of its poll hops (two lines per hop of every running task: core/logging.py).
    arq_lines = [e for e in ours if e["logger"] == "arq.worker"]
    for job in (queue.SUBMIT, queue.STORE):
        started = [e for e in arq_lines if e["job"] == job and "→" in e["event"]]
        assert started and all(e["job_id"] in e["event"] for e in started), (job, arq_lines)
    assert not [e for e in arq_lines if e["job"] == queue.POLL and e["level"] == "info"]
    (delivered,) = [e for e in worker_lines if e["event"] == "webhook_attempt"]
    assert delivered["outcome"] == "delivered" and delivered["delivery_id"]


async def test_library_records_and_exceptions_are_json_lines(
    served: tuple[Stack, Api], redis_url: str
) -> None:
    stack, api = served
    # uvicorn's own warning about a request it cannot parse.
    host, port = api.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        raw.recv(1024)
    invalid = await eventually(
        lambda: [e for e in lines(stack.log_dir / "api.log") if e["logger"] == "uvicorn.error"],
        10,
        what="uvicorn's line about the invalid request",
    )
    assert invalid[0]["level"] == "warning" and "Invalid HTTP request" in invalid[0]["event"]

    # A job that raises: arq logs the failure with its traceback, inside the JSON line.
    task_id = "video_" + secrets.token_hex(8)
    redis = await create_pool(RedisSettings.from_dsn(redis_url), **ARQ_CODEC)
    try:
        await redis.enqueue_job(queue.POLL, task_id, _job_id=f"poll:{task_id}:0:bad")
    finally:
        await redis.aclose()
    failed = await eventually(
        lambda: [e for e in lines(worker_log(stack)) if "exception" in e],
        20,
        until=lambda found: any(e.get("task_id") == task_id for e in found),
        what="arq's failure line for the job",
    )
    (line,) = [e for e in failed if e.get("task_id") == task_id]
    assert (line["logger"], line["level"], line["job"]) == ("arq.worker", "error", queue.POLL)
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert "TypeError" in line["exception"] and "attempt" in line["exception"]

    starting = [e for e in lines(worker_log(stack)) if e["event"].startswith("Starting worker")]
    assert starting and starting[0]["logger"] == "arq.worker"
    for path in stack.log_dir.glob("*.log"):
        if path.name != "simulator.log":  # the simulator is not ours to configure
            lines(path)
