"""The chaos run: nothing lost, nothing charged twice.

    python -m tests.chaos.run [--tasks 300] [--workers 3] [--seed N] [--kill-every 3.0]
                              [--max-seconds 600] [--rate 5] [--json out.json] [--keep]

Starts PostgreSQL 15, Redis, the simulator, the API and ``--workers`` ARQ workers as
local processes, submits ``--tasks`` videos over HTTP (each with an ``Idempotency-Key``,
retried on connection errors and 5xx) with a seeded mix of scripted outcomes, and
meanwhile SIGKILLs a random worker every ``--kill-every`` seconds (jittered), flushes
Redis once and restarts PostgreSQL once. Then it waits until no task is active and
checks, straight in the database, that every accepted video reached its expected final
state, was settled exactly once, and that the ledger invariants hold.

Exit code 0 only if still running = lost = settled twice = created twice = ledger
violations = unexpected outcomes = refused creates = 0. Logs of every process stay in
the run directory printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import make_engine
from core.invariants import ledger_violations
from core.repo.tables import entries, tasks
from schemas.problems import FailureCode
from schemas.status import ACTIVE, TERMINAL, EntryKind, TaskStatus
from tests.chaos.processes import ADMIN_KEY, Cluster

ACTIVE_NAMES = frozenset(str(s) for s in ACTIVE)
TERMINAL_NAMES = frozenset(str(s) for s in TERMINAL)
AMBIGUOUS = str(FailureCode.UPSTREAM_SUBMIT_AMBIGUOUS)
USERS = 5
GRANT = 1_000_000_000
MODEL = "veo3"
CREATE_DEADLINE = 150.0  # per create, across its retries
POLL_INTERVAL = 0.5
FAULT_SETTLE = 5.0  # seconds after a flush/restart that still count as "during" it


# -- the plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    weight: int
    directive: str
    status: str
    code: str | None = None


KINDS = (
    Kind("success", 52, "", "completed"),
    Kind("poll429", 7, "[sim:poll429=2]", "completed"),
    Kind("poll500", 7, "[sim:poll500=2]", "completed"),
    Kind("nourl", 6, "[sim:nourl=2]", "completed"),
    Kind("unknown_status", 6, "[sim:unknown_status=2]", "completed"),
    Kind("submit500", 6, "[sim:submit500=1]", "completed"),
    Kind("fail", 6, "[sim:fail=chaos]", "failed", str(FailureCode.UPSTREAM_FAILED)),
    Kind("submit400", 5, "[sim:submit=400]", "failed", str(FailureCode.UPSTREAM_REJECTED)),
    Kind("download404", 5, "[sim:download404]", "failed", str(FailureCode.DOWNLOAD_FAILED)),
)


@dataclass
class Planned:
    index: int
    kind: str
    prompt: str
    user: str
    key: str
    expected_status: str
    expected_code: str | None
    video_id: str | None = None
    attempts: int = 0
    refused: str | None = None
    started_at: float | None = None
    accepted_at: float | None = None
    answers: list[str] = field(default_factory=list)  # every non-200 answer, in order


def make_plan(count: int, seed: int) -> list[Planned]:
    """A seeded mix: every kind at least once (when count allows), then by weight."""
    rng = random.Random(seed)
    kinds = list(KINDS[: min(count, len(KINDS))])
    kinds += rng.choices(KINDS, weights=[k.weight for k in KINDS], k=count - len(kinds))
    rng.shuffle(kinds)
    plan = []
    for index, kind in enumerate(kinds):
        duration = round(rng.uniform(1.0, 6.0), 1)
        # Unique text per task: the simulator's submit500 counter is per prompt.
        prompt = f"chaos {seed}/{index} {kind.name} [sim:duration={duration}] {kind.directive}"
        plan.append(
            Planned(
                index=index,
                kind=kind.name,
                prompt=prompt.strip(),
                user=f"chaos-user-{index % USERS}",
                key=f"chaos-{seed}-{index}-{rng.getrandbits(32):08x}",
                expected_status=kind.status,
                expected_code=kind.code,
            )
        )
    return plan


# -- bookkeeping ------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str  # kill | redis_flushall | postgres_restart | worker_died | api_died
    at: float
    until: float
    detail: str = ""


@dataclass
class Stats:
    t0: float = field(default_factory=time.monotonic)
    faults: list[Fault] = field(default_factory=list)
    worker_restarts: int = 0
    api_restarts: int = 0
    monitor_errors: int = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def count(self, kind: str) -> int:
        return sum(1 for f in self.faults if f.kind == kind)


def say(stats: Stats, message: str) -> None:
    print(f"[{stats.now():7.2f}s] {message}", flush=True)


# -- the driver (HTTP client) -----------------------------------------------------------


def _problem_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


async def admin_setup(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/v1/admin/config",
        json={
            "max_concurrent_tasks_per_user": 10_000,
            "task_timeout_seconds": 120,
            # 5 users at --rate 5/s make 60 creates a minute each: the default limit.
            "user_creates_per_minute": 1_000_000,
        },
    )
    response.raise_for_status()
    for n in range(USERS):
        response = await client.post(
            f"/v1/credits/chaos-user-{n}/grants", json={"amount": GRANT, "reason": "chaos run"}
        )
        response.raise_for_status()


async def create(client: httpx.AsyncClient, task: Planned, stats: Stats) -> None:
    """POST until accepted or refused; the same Idempotency-Key on every retry."""
    body = {"prompt": task.prompt, "user": task.user, "model": MODEL}
    headers = {"Idempotency-Key": task.key}
    end = time.monotonic() + CREATE_DEADLINE
    delay = 0.2
    last = ""
    task.started_at = stats.now()
    while True:
        task.attempts += 1
        try:
            response = await client.post("/v1/videos", json=body, headers=headers)
        except httpx.TransportError as exc:
            last = type(exc).__name__
            task.answers.append(f"{stats.now():.1f}s {last}")
        else:
            code = _problem_code(response)
            if response.status_code == 200:
                task.video_id = str(response.json()["id"])
                task.accepted_at = stats.now()
                return
            last = f"{response.status_code} {code}"
            task.answers.append(f"{stats.now():.1f}s {last}")
            retryable = response.status_code >= 500 or code == "idempotency_request_in_progress"
            if not retryable:
                task.refused = f"{last}: {response.text[:300]}"
                return
        if time.monotonic() + delay > end:
            task.refused = f"gave up after {task.attempts} attempts: {last}"
            return
        await asyncio.sleep(delay)
        delay = min(2.0, delay * 2)


async def submit_all(
    client: httpx.AsyncClient, plan: list[Planned], rate: float, concurrency: int, stats: Stats
) -> None:
    gate = asyncio.Semaphore(concurrency)
    start = time.monotonic()

    async def one(task: Planned, at: float) -> None:
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        async with gate:
            await create(client, task, stats)

    await asyncio.gather(*(one(t, i / rate) for i, t in enumerate(plan)))


# -- the database monitor ---------------------------------------------------------------


class Monitor:
    """Samples every task's (status, polls) and keeps the time of each change."""

    def __init__(self, engine: AsyncEngine, stats: Stats) -> None:
        self.engine = engine
        self.stats = stats
        self.history: dict[str, list[tuple[float, str, int]]] = {}
        self.current: dict[str, tuple[str, int]] = {}
        self.last_ok = -1.0

    async def sample(self) -> None:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(tasks.c.id, tasks.c.status, tasks.c.polls))).all()
        now = self.stats.now()
        current = {}
        for row in rows:
            state = (str(row.status), int(row.polls))
            current[row.id] = state
            changes = self.history.setdefault(row.id, [])
            if not changes or changes[-1][1:] != state:
                changes.append((now, *state))
        self.current = current
        self.last_ok = now

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.sample(), timeout=5)
            except Exception:  # noqa: BLE001 - the database may be restarting: skip a sample
                self.stats.monitor_errors += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_INTERVAL)

    def quiescent(self, accepted: set[str], since: float) -> bool:
        if self.last_ok < since:
            return False
        if any(status in ACTIVE_NAMES for status, _ in self.current.values()):
            return False
        return accepted <= self.current.keys()


# -- faults and the supervisor ----------------------------------------------------------


async def inject_faults(
    cluster: Cluster,
    stats: Stats,
    stop: asyncio.Event,
    rng: random.Random,
    kill_every: float,
    flush_at: float,
    restart_at: float,
) -> None:
    """Kill workers on a jittered beat; flush Redis once and restart PostgreSQL once."""
    flushed = restarted = False
    next_kill = stats.now() + kill_every * rng.uniform(0.5, 1.5)
    while True:
        now = stats.now()
        stopping = stop.is_set()
        if not flushed and (now >= flush_at or stopping):
            flushed = True
            await asyncio.to_thread(cluster.redis.flushall)
            stats.faults.append(Fault("redis_flushall", now, stats.now()))
            say(stats, "fault: Redis FLUSHALL")
        elif not restarted and (now >= restart_at or stopping):
            restarted = True
            say(stats, "fault: restarting PostgreSQL")
            await asyncio.to_thread(cluster.restart_postgres)
            stats.faults.append(Fault("postgres_restart", now, stats.now()))
            say(stats, f"fault: PostgreSQL back after {stats.now() - now:.1f}s")
        elif stopping:
            return
        elif now >= next_kill:
            alive = [i for i, w in enumerate(cluster.workers) if w.alive]
            if alive:
                slot = rng.choice(alive)
                victim = cluster.workers[slot]
                victim.kill()
                replacement = cluster.start_worker(slot)
                detail = f"{victim.name} (pid {victim.pid}) -> {replacement.name}"
                stats.faults.append(Fault("kill", now, now, detail))
                say(stats, f"fault: SIGKILL {detail}")
            next_kill = now + kill_every * rng.uniform(0.5, 1.5)
        await asyncio.sleep(0.05)


async def supervise(cluster: Cluster, stats: Stats, stop: asyncio.Event) -> None:
    """Restart any worker or API process that died on its own (e.g. DB briefly down)."""
    while not stop.is_set():
        for slot, worker in enumerate(cluster.workers):
            if not worker.alive and time.monotonic() - worker.started_at > 1.0:
                stats.worker_restarts += 1
                detail = f"{worker.name} exit {worker.returncode}"
                stats.faults.append(Fault("worker_died", stats.now(), stats.now(), detail))
                replacement = cluster.start_worker(slot)
                say(
                    stats,
                    f"supervisor: {worker.name} exited ({worker.returncode}); "
                    f"started {replacement.name}",
                )
        api = cluster.api
        if api is not None and not api.alive and time.monotonic() - api.started_at > 1.0:
            stats.api_restarts += 1
            detail = f"exit {api.returncode}"
            stats.faults.append(Fault("api_died", stats.now(), stats.now(), detail))
            cluster.start_api(wait=False)
            say(stats, f"supervisor: api exited ({api.returncode}); restarted")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


# -- analysis ---------------------------------------------------------------------------


@dataclass
class Recovery:
    worst: float = 0.0
    worst_task: str = ""
    worst_kill_at: float = 0.0
    worst_clean: float = 0.0  # among delays not overlapping a flush / restart
    worst_clean_task: str = ""
    p50: float = 0.0
    p95: float = 0.0
    samples: int = 0


History = dict[str, list[tuple[float, str, int]]]


def kill_recovery(history: History, faults: list[Fault]) -> Recovery:
    """For each kill at k and each task active at k: the delay until its next change.

    An upper bound on recovery: it includes the normal wait between polls (and the
    monitor's own 0.5 s sampling), not only the time the kill cost.
    """
    kills = [f.at for f in faults if f.kind == "kill"]
    outages = [
        (f.at, f.until + FAULT_SETTLE)
        for f in faults
        if f.kind in ("redis_flushall", "postgres_restart")
    ]
    result = Recovery()
    delays: list[float] = []
    for task_id, changes in history.items():
        times = [c[0] for c in changes]
        for k in kills:
            i = bisect.bisect_right(times, k) - 1
            if i < 0 or changes[i][1] not in ACTIVE_NAMES or i + 1 >= len(changes):
                continue
            delay = changes[i + 1][0] - k
            delays.append(delay)
            if delay > result.worst:
                result.worst, result.worst_task, result.worst_kill_at = delay, task_id, k
            overlaps = any(a <= k + delay and k <= b for a, b in outages)
            if not overlaps and delay > result.worst_clean:
                result.worst_clean, result.worst_clean_task = delay, task_id
    if delays:
        delays.sort()
        result.samples = len(delays)
        result.p50 = statistics.median(delays)
        result.p95 = delays[min(len(delays) - 1, int(0.95 * len(delays)))]
    return result


@dataclass
class Outcome:
    rows: dict[str, Any]
    settled_twice: list[tuple[str, int]]
    violations: list[str]


async def final_state(engine: AsyncEngine) -> Outcome:
    settle_kinds = [str(EntryKind.CAPTURE), str(EntryKind.RELEASE)]
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    tasks.c.id,
                    tasks.c.status,
                    tasks.c.error_code,
                    tasks.c.error_message,
                    tasks.c.prompt,
                    tasks.c.polls,
                    tasks.c.submit_attempts,
                    tasks.c.next_attempt_at,
                    tasks.c.updated_at,
                )
            )
        ).all()
        twice = (
            await conn.execute(
                select(entries.c.task_id, func.count())
                .where(entries.c.kind.in_(settle_kinds))
                .group_by(entries.c.task_id)
                .having(func.count() > 1)
            )
        ).all()
        violations = await ledger_violations(conn)
    return Outcome({r.id: r for r in rows}, [(str(t), int(n)) for t, n in twice], list(violations))


def log_hits(run_dir: Path, task_id: str, limit: int = 6) -> list[str]:
    """The last log lines (any process) that mention a task."""
    hits: list[str] = []
    files = [*sorted((run_dir / "logs").glob("*.log")), run_dir / "api.log"]
    for path in files:
        if not path.exists():
            continue
        with path.open(errors="replace") as lines:
            hits += [f"{path.name}: {line.rstrip()[:300]}" for line in lines if task_id in line]
    return hits[-limit:]


# -- the run ----------------------------------------------------------------------------


@dataclass
class Report:
    run_dir: str
    args: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    failed_by_code: dict[str, int] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    recovery: dict[str, Any] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)  # per accepted task, for --json
    ok: bool = False

    MUST_BE_ZERO = (
        "still running",
        "lost",
        "settled twice",
        "created twice",
        "ledger invariant violations",
        "unexpected outcomes",
        "creates refused",
    )


async def chaos(cluster: Cluster, args: argparse.Namespace, stats: Stats, report: Report) -> None:
    deadline = stats.t0 + args.max_seconds
    rng = random.Random(args.seed)
    plan = make_plan(args.tasks, args.seed)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    engine = make_engine(cluster.pg.url, pool_size=2)
    monitor = Monitor(engine, stats)
    done = asyncio.Event()
    background: list[asyncio.Task[None]] = []
    try:
        async with httpx.AsyncClient(base_url=cluster.api_url, headers=headers, timeout=10) as http:
            await admin_setup(http)
            for _ in range(args.workers):
                cluster.start_worker()
            say(
                stats,
                f"{args.workers} workers started; submitting {args.tasks} videos at {args.rate}/s",
            )
            background.append(asyncio.create_task(monitor.run(done)))
            background.append(asyncio.create_task(supervise(cluster, stats, done)))
            submit_seconds = args.tasks / args.rate
            start = stats.now()
            stop_faults = asyncio.Event()
            faults = asyncio.create_task(
                inject_faults(
                    cluster,
                    stats,
                    stop_faults,
                    rng,
                    args.kill_every,
                    flush_at=start + submit_seconds / 3,
                    restart_at=start + 2 * submit_seconds / 3,
                )
            )
            try:
                remaining = max(1.0, deadline - time.monotonic())
                await asyncio.wait_for(
                    submit_all(http, plan, args.rate, args.concurrency, stats), remaining
                )
            except TimeoutError:
                say(stats, "deadline reached while submitting")
            for task in plan:
                if task.video_id is None and task.refused is None:
                    task.refused = "not accepted before the deadline"
            say(stats, f"submitted: {sum(t.video_id is not None for t in plan)} accepted")
            await asyncio.sleep(args.fault_tail)
            stop_faults.set()
            await faults
            faults_over = stats.now()
            say(stats, "faults stopped; waiting for quiescence")
            accepted = {t.video_id for t in plan if t.video_id}
            while time.monotonic() < deadline and not monitor.quiescent(accepted, faults_over):
                await asyncio.sleep(POLL_INTERVAL)
            say(stats, "quiescent" if monitor.quiescent(accepted, faults_over) else "deadline")
        outcome = None
        for _ in range(20):
            try:
                outcome = await final_state(engine)
                break
            except Exception as exc:  # noqa: BLE001 - retry while the database settles
                say(stats, f"final check failed ({type(exc).__name__}); retrying")
                await asyncio.sleep(1)
        if outcome is None:
            raise RuntimeError("could not read the final state from PostgreSQL")
        analyse(plan, monitor, outcome, stats, report, Path(cluster.run_dir))
    finally:
        done.set()
        for job in background:
            job.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await engine.dispose()


def analyse(
    plan: list[Planned],
    monitor: Monitor,
    outcome: Outcome,
    stats: Stats,
    report: Report,
    run_dir: Path,
) -> None:
    rows = outcome.rows
    accepted = {t.video_id: t for t in plan if t.video_id}
    problems: dict[str, list[str]] = {}

    def note(kind: str, task_id: str, text: str) -> None:
        problems.setdefault(kind, []).append(f"{task_id}: {text}")

    def describe(row: Any) -> str:
        return (
            f"status={row.status} polls={row.polls} submit_attempts={row.submit_attempts} "
            f"error={row.error_code}:{(row.error_message or '')[:120]!r} "
            f"next_attempt_at={row.next_attempt_at} updated_at={row.updated_at}"
        )

    completed = 0
    failed: Counter[str] = Counter()
    ambiguous: list[str] = []
    lost = unexpected = 0
    for video_id, task in accepted.items():
        row = rows.get(video_id)
        if row is None:
            lost += 1
            note("lost", video_id, f"accepted (task {task.index}, {task.kind}) but no row")
            continue
        status = str(row.status)
        if status not in TERMINAL_NAMES:
            lost += 1
            note("lost", video_id, f"never terminal ({task.kind}): {describe(row)}")
            continue
        if status == TaskStatus.COMPLETED:
            completed += 1
        else:
            failed[str(row.error_code) if status == TaskStatus.FAILED else status] += 1
        if status == TaskStatus.FAILED and row.error_code == AMBIGUOUS:
            ambiguous.append(video_id)
            continue
        if (status, row.error_code if status != TaskStatus.COMPLETED else None) != (
            task.expected_status,
            task.expected_code,
        ):
            unexpected += 1
            note(
                "unexpected",
                video_id,
                f"{task.kind} expected {task.expected_status}/{task.expected_code}, "
                f"got {describe(row)}",
            )

    still_running = [tid for tid, row in rows.items() if str(row.status) in ACTIVE_NAMES]
    for tid in still_running:
        if tid not in accepted:
            note("still running", tid, f"(not accepted by the driver) {describe(rows[tid])}")
    prompts = Counter(str(row.prompt) for row in rows.values())
    duplicates = [p for p, n in prompts.items() if n > 1]
    for prompt in duplicates:
        ids = [tid for tid, row in rows.items() if row.prompt == prompt]
        note("created twice", ",".join(ids), prompt)
    unclaimed = [tid for tid in rows if tid not in accepted]
    refused = [t for t in plan if t.video_id is None]
    for t in refused:
        note("creates refused", f"task {t.index}", f"{t.kind}: {t.refused}")
    for t in plan:
        if t.attempts > 1:
            took = (t.accepted_at or stats.now()) - (t.started_at or 0.0)
            answers = _squeeze(t.answers)
            note(
                "info: creates retried", t.video_id or f"task {t.index}", f"{took:.1f}s: {answers}"
            )
    for tid, n in outcome.settled_twice:
        note("settled twice", tid, f"{n} capture/release entries")
    if outcome.violations:
        problems["ledger invariant violations"] = list(outcome.violations)

    # An ambiguous submit is legitimate when a worker died (or the database went away)
    # while the task was being submitted; flag the ones no fault can explain.
    disruptive = [f for f in stats.faults if f.kind != "redis_flushall"]
    unexplained = []
    for tid in ambiguous:
        changes = monitor.history.get(tid, [])
        first = changes[0][0] if changes else 0.0
        last = changes[-1][0] if changes else stats.now()
        if not any(first - 10 <= f.at and f.until <= last for f in disruptive):
            unexplained.append(tid)
            note("ambiguous without a nearby fault", tid, describe(rows[tid]))

    # Diagnose: the log lines of each problem task.
    for kind in ("lost", "unexpected", "still running", "ambiguous without a nearby fault"):
        for line in list(problems.get(kind, []))[:10]:
            tid = line.split(":", 1)[0]
            problems.setdefault(f"logs: {kind}", []).append(f"--- {tid}")
            problems[f"logs: {kind}"] += log_hits(run_dir, tid)

    recovery = kill_recovery(monitor.history, stats.faults)
    for t in plan:
        row = rows.get(t.video_id) if t.video_id else None
        report.tasks.append(
            {
                "index": t.index,
                "id": t.video_id,
                "kind": t.kind,
                "expected": [t.expected_status, t.expected_code],
                "final": [str(row.status), row.error_code] if row is not None else None,
                "create_attempts": t.attempts,
                "answers": t.answers,
                "history": monitor.history.get(t.video_id or "", []),
            }
        )
    report.failed_by_code = dict(sorted(failed.items()))
    report.metrics = {
        "accepted": len(accepted),
        "completed": completed,
        "failed": sum(failed.values()),
        "still running": len(still_running),
        "lost": lost,
        "settled twice": len(outcome.settled_twice),
        "created twice": len(duplicates),
        "ledger invariant violations": len(outcome.violations),
        "unexpected outcomes": unexpected,
        "upstream_submit_ambiguous (legitimate)": len(ambiguous),
        "  of which with no fault nearby": len(unexplained),
        "creates refused": len(refused),
        "creates retried (same key)": sum(1 for t in plan if t.attempts > 1),
        "tasks the driver never got": len(unclaimed),
        "worker kills": stats.count("kill"),
        "worker restarts (died on their own)": stats.worker_restarts,
        "api restarts": stats.api_restarts,
        "redis flushes": stats.count("redis_flushall"),
        "postgresql restarts": stats.count("postgres_restart"),
        "worst kill->recovery s (upper bound)": round(recovery.worst, 2),
        "  same, away from flush/restart": round(recovery.worst_clean, 2),
        "  p50 / p95 kill->next change s": f"{recovery.p50:.2f} / {recovery.p95:.2f}",
        "monitor samples skipped (db down)": stats.monitor_errors,
    }
    report.recovery = asdict(recovery)
    report.problems = problems
    report.faults = [asdict(f) for f in stats.faults]
    report.ok = all(report.metrics[name] == 0 for name in Report.MUST_BE_ZERO)


def _squeeze(answers: list[str]) -> str:
    """'1.0s 503 x', '1.2s 409 y', '1.6s 409 y' -> '1.0s 503 x; 1.2s 409 y (x2)'."""
    out: list[list[Any]] = []
    for answer in answers:
        what = answer.split(" ", 1)[1]
        if out and out[-1][1] == what:
            out[-1][2] += 1
        else:
            out.append([answer, what, 1])
    return "; ".join(
        a if n == 1 else f"{a} (x{n}, until {answers[-1].split()[0]})" for a, _w, n in out
    )


def render(report: Report, wall: float) -> str:
    rows: list[tuple[str, str, str]] = []
    metrics = dict(report.metrics)
    order = list(metrics)
    for name in order:
        value = metrics[name]
        check = ""
        if name in Report.MUST_BE_ZERO:
            check = "ok" if value == 0 else "FAIL"
        rows.append((name, str(value), check))
        if name == "failed":
            for code, n in report.failed_by_code.items():
                rows.append((f"  failed: {code}", str(n), ""))
    rows.append(("wall time s", f"{wall:.1f}", ""))
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    lines = ["chaos run: nothing lost, nothing charged twice", "-" * (width + vwidth + 10)]
    lines += [f"{n:<{width}}  {v:>{vwidth}}  {c}".rstrip() for n, v, c in rows]
    lines.append("-" * (width + vwidth + 10))
    lines.append(
        "kill->recovery: for each kill, each task active at that moment, the time until its"
    )
    lines.append(
        "(status, polls) next changed, sampled every 0.5 s; an upper bound that includes normal"
    )
    lines.append("waiting between polls, not only the time the kill cost.")
    if report.recovery.get("worst_task"):
        lines.append(
            f"worst: task {report.recovery['worst_task']} after the kill at "
            f"{report.recovery['worst_kill_at']:.1f}s; away from flush/restart: "
            f"{report.recovery['worst_clean_task']}"
        )
    lines.append(f"result: {'PASS' if report.ok else 'FAIL'}   run dir: {report.run_dir}")
    return "\n".join(lines)


def render_problems(report: Report, limit: int = 20) -> str:
    out = []
    for kind, items in report.problems.items():
        out.append(f"== {kind} ({len(items)})")
        out += [f"   {item}" for item in items[: limit if not kind.startswith("logs") else 200]]
        if len(items) > limit and not kind.startswith("logs"):
            out.append(f"   … {len(items) - limit} more (see --json)")
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos.run", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--kill-every", type=float, default=3.0, help="mean seconds between kills")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="overall deadline")
    parser.add_argument("--rate", type=float, default=5.0, help="creates per second")
    parser.add_argument("--concurrency", type=int, default=16, help="creates in flight at most")
    parser.add_argument(
        "--fault-tail", type=float, default=3.0, help="seconds of faults after the last create"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database and storage even on success"
    )
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    if args.tasks < 1 or args.workers < 1 or args.rate <= 0 or args.kill_every <= 0:
        parser.error("--tasks, --workers, --rate and --kill-every must be positive")
    return args


def _terminate(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    run_dir = Path(tempfile.mkdtemp(prefix="google-video-chaos-", dir="/tmp"))
    run_dir.chmod(0o755)  # PostgreSQL runs as `postgres` and must traverse it
    stats = Stats()
    report = Report(run_dir=str(run_dir), args={k: str(v) for k, v in vars(args).items()})
    cluster = Cluster(run_dir, seed=args.seed)
    say(
        stats,
        f"chaos run seed={args.seed} tasks={args.tasks} workers={args.workers} run dir {run_dir}",
    )
    error: BaseException | None = None
    try:
        cluster.start_services()
        say(
            stats,
            f"services up: postgres :{cluster.pg.port}, redis :{cluster.redis.port}, "
            f"simulator {cluster.sim_url}, api {cluster.api_url}",
        )
        asyncio.run(chaos(cluster, args, stats, report))
    except BaseException as exc:  # noqa: BLE001 - report, clean up, then fail
        error = exc
    finally:
        cluster.cleanup()
        orphans = cluster.orphans()
    wall = stats.now()
    if error is not None:
        print(f"chaos run aborted: {type(error).__name__}: {error}", file=sys.stderr)
        print(f"run dir (logs): {run_dir}", file=sys.stderr)
        if isinstance(error, KeyboardInterrupt):
            return 130
        import traceback

        traceback.print_exception(error)
        return 2
    report.metrics["orphan processes after cleanup"] = len(orphans)
    if orphans:
        report.problems["orphans"] = orphans
    print(render(report, wall))
    if report.problems:
        print(render_problems(report))
    if args.json is not None:
        payload = {**asdict(report), "wall_seconds": round(wall, 1)}
        args.json.write_text(json.dumps(payload, indent=2, default=str))
    if report.ok and not args.keep:
        shutil.rmtree(run_dir / "pg" / "data", ignore_errors=True)
        shutil.rmtree(run_dir / "storage", ignore_errors=True)
    return 0 if report.ok and not orphans else 1


if __name__ == "__main__":
    sys.exit(main())
