"""Webhook latency: from the simulator finishing a task to its ``video.completed`` webhook
arriving at the client, with the gateway's notify_hook callback and with polling only.

Everything is real and local (127.0.0.1): a private PostgreSQL and Redis, the simulator at
time scale 1, one API process, ``--workers`` ARQ workers, local file storage, and a webhook
receiver (uvicorn in a thread of this process) registered through the API. Two runs:

- ``callback``: ``GOOGLE_VIDEO_CALLBACK_URL`` points at the API, so the worker sends
  ``notify_hook`` at submit and the simulator POSTs it when the task finishes;
- ``polling``: no callback URL: the worker's polls alone notice the finish.

Both runs keep the production poll pacing (first poll after 10 s, intervals 2-30 s) and
submit the same ``--tasks`` prompts over ``--spread`` seconds; each prompt carries
``[sim:duration=S]`` (S uniform in ``--min-duration``-``--max-duration``, seeded, identical
in both runs) and a unique marker that maps the delivered video to its simulator task
(``GET /_sim/tasks``). Latency = receiver arrival (``time.time()``) - the task's
``finished_at`` on the simulator's clock: same host, same clock, no skew. Upstream GETs
per task come from ``GET /_sim/stats``.

``python -m bench.webhook_latency [--tasks 200] [--json out.json] [--append-results]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.common import (
    ADMIN_KEY,
    PY,
    SIM_KEY,
    UNLIMITED,
    Child,
    CpuMeter,
    Infra,
    client_key,
    free_port,
    log,
    machine,
    processes,
    start_child,
    start_simulator,
    tree,
)
from cli.supervise import wait_for_port

RESULTS_MD = Path(__file__).resolve().parent / "results.md"
# The production defaults (schemas.settings), set explicitly so no inherited env leaks in.
PRODUCTION_PACING = {
    "GOOGLE_VIDEO_POLL_FIRST_DELAY": "10",
    "GOOGLE_VIDEO_POLL_MIN_INTERVAL": "2",
    "GOOGLE_VIDEO_POLL_MAX_INTERVAL": "30",
}
FINAL_EVENTS = ("video.completed", "video.failed", "video.cancelled")
# The API caps max_concurrent_tasks_per_user at 10 000 (schemas.config).
MAX_CONCURRENT = 10_000
CREDITS = 1_000_000_000
RUNS = ("callback", "polling")


# --- the webhook receiver -------------------------------------------------------------


@dataclass
class Arrival:
    at: float  # time.time() when the request reached the handler
    webhook_id: str
    body: bytes


@dataclass
class Receiver:
    """Answers 200 to every POST and records its wall-clock arrival time."""

    port: int = field(default_factory=free_port)
    arrivals: list[Arrival] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: Request) -> Response:
        at = time.time()
        body = await request.body()
        self.arrivals.append(Arrival(at, request.headers.get("webhook-id", ""), body))
        return Response(status_code=200)

    def start(self) -> None:
        app = Starlette(routes=[Route("/hook", self._handle, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_for_port("127.0.0.1", self.port, time.monotonic() + 10)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    def final_events(self) -> dict[str, list[tuple[float, str]]]:
        """video id → [(arrival, event type)] of every final event, in arrival order."""
        out: dict[str, list[tuple[float, str]]] = {}
        for arrival in list(self.arrivals):
            event = json.loads(arrival.body)
            if event.get("type") in FINAL_EVENTS:
                out.setdefault(event["data"]["id"], []).append((arrival.at, event["type"]))
        return out


# --- statistics -----------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "n": len(values),
        "min": min(values),
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


# --- one run --------------------------------------------------------------------------


@dataclass
class Plan:
    markers: list[str]
    # None: no `[sim:duration]` directive, the simulator draws its realistic duration.
    durations: list[float | None]
    # One prompt for every task (the simulator then renders one video for all, not one
    # per task) instead of a marker per task; tasks are matched by their upstream id.
    prompt: str | None = None

    @classmethod
    def make(cls, tasks: int, seed: int, low: float, high: float) -> Plan:
        rng = random.Random(seed)
        durations: list[float | None] = [round(rng.uniform(low, high), 1) for _ in range(tasks)]
        return cls([f"#{i:04d}" for i in range(tasks)], durations)

    @classmethod
    def realistic(cls, tasks: int, prompt: str | None = None) -> Plan:
        """``tasks`` prompts without a duration directive (all ``prompt`` if given)."""
        return cls([f"#{i:04d}" for i in range(tasks)], [None] * tasks, prompt)


@dataclass
class RunResult:
    name: str
    tasks: int
    completed: int
    failed: int
    missing: int
    duplicates: int
    unmatched: int
    wall_seconds: float
    latency: dict[str, float]
    gets_per_task: dict[str, float]
    gets_total: int
    callbacks: dict[str, int]
    submit_lag: dict[str, float]
    loadavg: tuple[float, float]  # 1-minute load average at the start and the end
    # Where the time goes: simulator finish -> task settled (completed_at in the database:
    # noticed, downloaded, stored) and settled -> webhook arrival.
    to_settled: dict[str, float]
    settled_to_arrival: dict[str, float]
    # Seconds each kind of ARQ job waited between being due and starting (from the
    # worker log: exact for jobs enqueued to run now; for deferred polls only the share
    # that started over 1.2 s late, which ARQ flags as "delayed").
    queue_wait: dict[str, dict[str, float]]
    polls_late_share: float
    cpu_seconds: dict[str, float]
    latencies: list[float] = field(repr=False)
    gets: list[int] = field(repr=False)


def product_env(
    infra: Infra,
    sim_url: str,
    callback_url: str | None,
    pacing: Mapping[str, str] = PRODUCTION_PACING,
) -> dict[str, str]:
    env = infra.env(
        {
            "GOOGLE_VIDEO_ENVIRONMENT": "development",
            "GOOGLE_VIDEO_UPSTREAM_KIND": "simulator",
            "GOOGLE_VIDEO_UPSTREAM_BASE_URL": sim_url,
            "GOOGLE_VIDEO_UPSTREAM_API_KEY": SIM_KEY,
            "GOOGLE_VIDEO_EGRESS_ALLOW": "127.0.0.0/8",
            "GOOGLE_VIDEO_EGRESS_ALLOW_HTTP": "true",
            "GOOGLE_VIDEO_STORAGE_URL": (infra.base / "data" / "storage").as_uri(),
            **pacing,
        }
    )
    env.pop("GOOGLE_VIDEO_CALLBACK_URL", None)
    if callback_url is not None:
        env["GOOGLE_VIDEO_CALLBACK_URL"] = callback_url
    return env


async def _setup(api: httpx.AsyncClient, client_key: str, receiver: Receiver) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    response = await api.put(
        "/v1/admin/config",
        json={
            "max_concurrent_tasks_per_user": MAX_CONCURRENT,
            "task_timeout_seconds": 600,
            **UNLIMITED,
        },
        headers=admin,
    )
    response.raise_for_status()
    response = await api.post(
        "/v1/credits/bench/grants",
        params={"client": "bench"},
        json={"amount": CREDITS, "reason": "webhook latency benchmark"},
        headers=admin,
    )
    response.raise_for_status()
    response = await api.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url},
        headers={"Authorization": f"Bearer {client_key}"},
    )
    response.raise_for_status()


async def _submit(
    api: httpx.AsyncClient, key: str, run: str, plan: Plan, spread: float
) -> dict[str, tuple[str, float]]:
    """Create every video (evenly over ``spread`` seconds); video id → (marker, created)."""
    headers = {"Authorization": f"Bearer {key}"}
    videos: dict[str, tuple[str, float]] = {}
    start = time.monotonic()
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, start + spread * i / len(plan.markers) - time.monotonic()))
        marker = f"wl-{run}-{plan.markers[i]}"
        seconds = plan.durations[i]
        directive = "" if seconds is None else f" [sim:duration={seconds}]"
        prompt = plan.prompt or f"webhook latency {marker}{directive}"
        body = {"prompt": prompt, "user": "bench"}
        async with gate:
            response = await api.post("/v1/videos", json=body, headers=headers)
        response.raise_for_status()
        videos[response.json()["id"]] = (marker, time.time())

    await asyncio.gather(*(one(i) for i in range(len(plan.markers))))
    return videos


@dataclass
class Stage:
    """What one run drives: the servers, its API and workers, the receiver."""

    name: str
    infra: Infra
    sim: Child
    sim_url: str
    api: Child
    api_url: str
    workers: list[Child]
    receiver: Receiver
    client_key: str

    def meter(self) -> CpuMeter:
        own = psutil.Process()
        return CpuMeter(
            {
                "worker": lambda: [p for w in self.workers for p in tree(w.pid)],
                "api": processes(self.api),
                "simulator": processes(self.sim),
                "postgres": self.infra.pg_processes,
                "redis": self.infra.redis_processes,
                "bench": lambda: [own],
            }
        )


async def drive(stage: Stage, plan: Plan, args: argparse.Namespace, first: bool) -> RunResult:
    name, receiver = stage.name, stage.receiver
    async with (
        httpx.AsyncClient(base_url=stage.api_url, timeout=30) as api,
        httpx.AsyncClient(base_url=stage.sim_url, timeout=30) as sim,
    ):
        if first:
            await _setup(api, stage.client_key, receiver)
        stats_before = (await sim.get("/_sim/stats")).json()
        load_start = os.getloadavg()[0]
        meter = stage.meter()
        meter.start()
        started = time.monotonic()
        videos = await _submit(api, stage.client_key, name, plan, args.spread)
        log(f"{name}: {len(videos)} videos created in {time.monotonic() - started:.1f} s")
        deadline = started + args.spread + args.max_duration + args.tail
        next_report = time.monotonic() + 15
        while time.monotonic() < deadline:
            done = sum(1 for v in receiver.final_events() if v in videos)
            if done >= len(videos):
                break
            if time.monotonic() >= next_report:
                log(
                    f"{name}: {done}/{len(videos)} final webhooks after "
                    f"{time.monotonic() - started:.0f} s"
                )
                next_report += 15
            await asyncio.sleep(0.5)
        wall = time.monotonic() - started
        cpu = meter.stop()
        await asyncio.sleep(1.0)  # let any trailing GET of a just-finished task land
        sim_tasks = (await sim.get("/_sim/tasks")).json()["tasks"]
        stats_after = (await sim.get("/_sim/stats")).json()
    upstream, settled = _recorded(stage.infra)
    matched = None
    if plan.prompt is not None:  # one prompt for all: matched by the recorded upstream id
        by_id = {task["task_id"]: task for task in sim_tasks}
        matched = [by_id.get(upstream.get(video, ""), {}) for video in videos]
    result = _measure(
        name, videos, receiver, sim_tasks, stats_before, stats_after, wall, settled, matched
    )
    result.loadavg = (load_start, os.getloadavg()[0])
    result.cpu_seconds = {k: round(v, 2) for k, v in cpu.items()}
    result.queue_wait, result.polls_late_share = _queue_waits(stage.workers)
    return result


def _recorded(infra: Infra) -> tuple[dict[str, str], dict[str, float]]:
    """Every task's upstream task id, and completed_at (Unix seconds) of the settled ones,
    by video id."""
    out = infra.psql(
        "SELECT id, coalesce(upstream_task_id, ''), coalesce(extract(epoch FROM completed_at), 0)"
        " FROM video_tasks"
    )
    rows = [line.split("|") for line in out.splitlines() if line]
    upstream = {video_id: task_id for video_id, task_id, _ in rows if task_id}
    settled = {video_id: float(epoch) for video_id, _, epoch in rows if float(epoch) > 0}
    return upstream, settled


_ARQ_START = re.compile(r"arq\.worker\s+([\d.]+)s → ([a-z]+):(\S+?)\((?:.*?)\)(.*)$")


def _queue_waits(workers: Sequence[Child]) -> tuple[dict[str, dict[str, float]], float]:
    """Queue waits by job kind from the workers' ARQ log lines (see RunResult)."""
    waits: dict[str, list[float]] = {}
    polls = late = 0
    for worker in workers:
        assert worker.log_path is not None
        for line in worker.log_path.read_text(errors="replace").splitlines():
            match = _ARQ_START.search(line)
            if match is None:
                continue
            since_enqueue, kind, ref, extra = match.groups()
            if kind == "poll" and ":cb:" not in ref:
                polls += 1
                late += "delayed=" in extra
                continue
            kind = "poll (callback)" if kind == "poll" else kind
            waits.setdefault(kind, []).append(float(since_enqueue))
    return {k: summary(v) for k, v in waits.items()}, late / polls if polls else 0.0


def _measure(
    name: str,
    videos: dict[str, tuple[str, float]],
    receiver: Receiver,
    sim_tasks: list[dict[str, Any]],
    before: dict[str, Any],
    after: dict[str, Any],
    wall: float,
    settled: dict[str, float],
    matched: list[dict[str, Any]] | None = None,
) -> RunResult:
    """The run's figures; each video's simulator task is found by the marker in its
    prompt, or given in ``matched`` (in the order of ``videos``; {} when not found)."""
    by_marker: dict[str, dict[str, Any]] = {}
    for task in sim_tasks:
        marker = task["prompt"].split()[2]  # "webhook latency <marker> [sim:...]"
        if marker.startswith(f"wl-{name}-"):
            # A resubmitted task would repeat its marker; the delivered video is the last.
            by_marker[marker] = task
    events = receiver.final_events()
    latencies: list[float] = []
    gets: list[int] = []
    lags: list[float] = []
    to_settled: list[float] = []
    to_arrival: list[float] = []
    completed = failed = missing = duplicates = unmatched = 0
    for index, (video_id, (marker, created)) in enumerate(videos.items()):
        arrivals = events.get(video_id, [])
        sim_task = by_marker.get(marker) if matched is None else (matched[index] or None)
        if sim_task is not None:
            gets.append(int(after["polls"].get(sim_task["task_id"], 0)))
            lags.append(sim_task["submitted_at"] - created)
        if not arrivals:
            missing += 1
            continue
        duplicates += len(arrivals) - 1
        at, kind = arrivals[0]
        if kind != "video.completed":
            failed += 1
            continue
        completed += 1
        if sim_task is None or sim_task["finished_at"] is None:
            unmatched += 1
            continue
        latencies.append(at - sim_task["finished_at"])
        if video_id in settled:
            to_settled.append(settled[video_id] - sim_task["finished_at"])
            to_arrival.append(at - settled[video_id])
    sent_before = before.get("notifications", {})
    callbacks = {
        key: int(value) - int(sent_before.get(key, 0))
        for key, value in after.get("notifications", {}).items()
    }
    return RunResult(
        name=name,
        tasks=len(videos),
        completed=completed,
        failed=failed,
        missing=missing,
        duplicates=duplicates,
        unmatched=unmatched,
        wall_seconds=wall,
        latency=summary(latencies),
        gets_per_task=summary([float(g) for g in gets]),
        gets_total=sum(gets),
        callbacks=callbacks,
        submit_lag=summary(lags),
        loadavg=(0.0, 0.0),
        to_settled=summary(to_settled),
        settled_to_arrival=summary(to_arrival),
        queue_wait={},
        polls_late_share=0.0,
        cpu_seconds={},
        latencies=latencies,
        gets=gets,
    )


@contextlib.contextmanager
def product(
    name: str,
    infra: Infra,
    sim_url: str,
    callback: bool,
    workers: int,
    pacing: Mapping[str, str] = PRODUCTION_PACING,
    worker_command: Sequence[str] | None = None,
) -> Iterator[tuple[Child, str, list[Child]]]:
    """The API (and its URL) and the workers of one run, each log file fresh; the workers
    run ``worker_command`` (default ``google-video worker``)."""
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    env = product_env(infra, sim_url, api_url if callback else None, pacing)
    command = [PY, "-m", "cli.main"]
    children: list[Child] = []
    try:
        api = start_child(
            f"api-{name}", [*command, "api", "--port", str(port)], env, infra.log_dir, port=port
        )
        children.append(api)
        for i in range(workers):
            argv = [*command, "worker"] if worker_command is None else list(worker_command)
            worker = start_child(f"worker-{name}-{i}", argv, env, infra.log_dir)
            children.append(worker)
        yield api, api_url, children[1:]
    finally:
        for child in reversed(children):
            child.stop(grace=30)


def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = Plan.make(args.tasks, args.seed, args.min_duration, args.max_duration)
    results: list[RunResult] = []
    began = time.gmtime()
    with Infra() as infra:
        infra.migrate()
        key = client_key(infra)
        sim, sim_url = start_simulator(infra, 1.0, args.seed)
        receiver = Receiver()
        receiver.start()
        try:
            for index, name in enumerate(args.runs):
                log(f"{name}: starting the API and {args.workers} worker(s)")
                callback = name == "callback"
                with product(name, infra, sim_url, callback, args.workers) as started:
                    api, api_url, workers = started
                    stage = Stage(name, infra, sim, sim_url, api, api_url, workers, receiver, key)
                    result = asyncio.run(drive(stage, plan, args, index == 0))
                results.append(result)
                log(f"{name}: latency {result.latency}, GETs/task {result.gets_per_task}")
        finally:
            receiver.stop()
            sim.stop()
            if args.keep_logs is not None:
                shutil.copytree(infra.log_dir, args.keep_logs, dirs_exist_ok=True)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", began),
        "machine": machine(),
        "config": {
            "tasks": args.tasks,
            "workers": args.workers,
            "spread_seconds": args.spread,
            "durations": f"uniform {args.min_duration}-{args.max_duration} s, seed {args.seed}",
            "pacing": PRODUCTION_PACING,
        },
        "runs": [asdict(r) for r in results],
    }


# --- report ---------------------------------------------------------------------------


def _ratio(report: dict[str, Any], section: str, stat: str) -> str:
    runs = {r["name"]: r for r in report["runs"]}
    try:
        value = runs["polling"][section][stat] / runs["callback"][section][stat]
    except (KeyError, ZeroDivisionError):
        return "-"
    return f"{value:.1f}x"


def markdown(report: dict[str, Any]) -> str:
    m, c = report["machine"], report["config"]
    redis_version = re.search(r"v=(\S+)", m["redis"])
    redis = f"Redis {redis_version.group(1)}" if redis_version else m["redis"]
    postgres = m["postgres"].replace("postgres (PostgreSQL)", "PostgreSQL").split(" (")[0]
    lines = [
        "## Webhook latency",
        "",
        f"Run {report['date']} on {m['nproc']} x {m['cpu']}, {m['memory']}, Python "
        f"{m['python']}, {postgres}, {redis}; everything on this one host.",
        "",
        "`python -m bench.webhook_latency "
        f"--tasks {c['tasks']} --workers {c['workers']}`: private PostgreSQL and Redis, the "
        "simulator at time scale 1, one API process, "
        f"{c['workers']} worker(s), local file storage, a webhook receiver registered through "
        f"the API. {c['tasks']} videos created over {c['spread_seconds']:g} s, upstream "
        f"durations {c['durations']} (the same in both runs). Production poll pacing "
        "(first poll 10 s after submit, then 2-30 s). **callback**: "
        "`GOOGLE_VIDEO_CALLBACK_URL` set, so the worker sends `notify_hook` and the simulator "
        "POSTs it when the task finishes; **polling**: no callback URL. Latency = arrival of "
        "the `video.completed` webhook at the receiver - the simulator's `finished_at` "
        "(`GET /_sim/tasks`), both `time.time()` on the same host (no clock skew); it "
        "includes noticing the finish, downloading and storing the MP4, settling, and the "
        "webhook POST. GETs = upstream task queries per task (`GET /_sim/stats`).",
        "",
        "| run | webhooks | p50 | p95 | max | mean | GETs/task mean (max) | callbacks sent "
        "| load 1 min (start, end) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        lat, gets = r["latency"], r["gets_per_task"]
        if not lat:
            lines.append(f"| {r['name']} | 0/{r['tasks']} | - | - | - | - | - | - | - |")
            continue
        lines.append(
            f"| {r['name']} | {r['completed']}/{r['tasks']} | {lat['p50']:.2f} s "
            f"| {lat['p95']:.2f} s | {lat['max']:.2f} s | {lat['mean']:.2f} s "
            f"| {gets['mean']:.2f} ({gets['max']:.0f}) | {r['callbacks'].get('sent', 0)} "
            f"| {r['loadavg'][0]:.1f}, {r['loadavg'][1]:.1f} |"
        )
    lines.append(
        f"| polling / callback | | {_ratio(report, 'latency', 'p50')} "
        f"| {_ratio(report, 'latency', 'p95')} | {_ratio(report, 'latency', 'max')} "
        f"| {_ratio(report, 'latency', 'mean')} | {_ratio(report, 'gets_per_task', 'mean')} | | |"
    )
    lines += [
        "",
        "Where the time goes (p50 / p95 in seconds; settled = the task's `completed_at`; "
        "ARQ wait = enqueue to start of the job; CPU over the run's wall time):",
        "",
        "| run | finish -> settled | settled -> webhook | ARQ wait: callback poll "
        "| ARQ wait: store | ARQ wait: deliver | polls started > 1.2 s late "
        "| worker CPU | machine busy (not ours) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        cpu, waits = r["cpu_seconds"], r["queue_wait"]
        ours = sum(v for k, v in cpu.items() if k != "machine")
        cores = int(m["nproc"]) * r["wall_seconds"]
        lines.append(
            f"| {r['name']} | {_pair(r['to_settled'])} | {_pair(r['settled_to_arrival'])} "
            f"| {_pair(waits.get('poll (callback)', {}))} | {_pair(waits.get('store', {}))} "
            f"| {_pair(waits.get('deliver', {}))} | {100 * r['polls_late_share']:.0f} % "
            f"| {cpu.get('worker', 0):.1f} s ({100 * cpu.get('worker', 0) / r['wall_seconds']:.0f} "
            f"% of a core) | {100 * cpu.get('machine', 0) / cores:.0f} % "
            f"({100 * max(0.0, cpu.get('machine', 0) - ours) / cores:.0f} %) |"
        )
    return "\n".join(lines) + "\n"


def _pair(stats: dict[str, float]) -> str:
    return f"{stats['p50']:.2f} / {stats['p95']:.2f}" if stats else "-"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--spread", type=float, default=4.0, help="seconds to create them")
    parser.add_argument("--min-duration", type=float, default=20.0)
    parser.add_argument("--max-duration", type=float, default=60.0)
    parser.add_argument("--tail", type=float, default=60.0, help="wait after the last finish")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    parser.add_argument("--keep-logs", type=Path, help="copy the processes' logs here")
    parser.add_argument("--json", type=Path, help="write the full report (raw values) here")
    parser.add_argument(
        "--append-results", action="store_true", help=f"append the table to {RESULTS_MD}"
    )
    args = parser.parse_args(argv)
    report = run(args)
    text = markdown(report)
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.append_results:
        with RESULTS_MD.open("a") as out:
            out.write(("\n" if RESULTS_MD.exists() and RESULTS_MD.stat().st_size else "") + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
