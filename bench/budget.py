"""The global upstream budget at full scale (issue 14, item 5): ``tasks`` running tasks,
``workers`` real worker processes, ``UPSTREAM_RATE_LIMIT=rate``, against the same run
with no budget, alternately (budget, none, budget, none ...).

Each run: tables emptied, Redis flushed, the simulator reset; ``tasks`` tasks submitted to
the simulator with upstream durations spread evenly over 20-60 s and written as
``running`` rows (as ``bench/drift.py`` does), polled at the product's default pacing.
After ``seconds`` the workers stop. Reported per run: the most GETs the simulator saw in
any 10 s window (per second), completion lag percentiles (``completed_at`` minus the
simulator's finish, for the tasks that finished upstream inside the window; one not
completed by the window's end counts as ``end - finish``, a lower bound), and failures.

``python -m bench.budget [--tasks 2000] [--seconds 120] [--rounds 1]`` prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from arq import create_pool
from arq.connections import RedisSettings

from bench.common import PY, SIM_KEY, Infra, log, start_child, start_simulator
from bench.drift import INSERT
from bench.poll_hop import _worker_env
from core.queue_codec import ARQ_CODEC

PRICE = 100


async def _seed(infra: Infra, sim_url: str, tasks: int) -> dict[str, float]:
    """Submit and write `tasks` tasks; each one's upstream finish (Unix s) by task id."""
    durations = [20 + 40 * i / max(1, tasks - 1) for i in range(tasks)]
    limit = asyncio.Semaphore(32)
    headers = {"Authorization": f"Bearer {SIM_KEY}"}
    async with httpx.AsyncClient(base_url=sim_url, headers=headers, timeout=30) as client:

        async def submit(duration: float) -> tuple[str, float]:
            async with limit:
                prompt = f"[sim:duration={duration:.2f}] budget benchmark"
                answer = await client.post(
                    "/google/v1/models/veo/videos", json={"prompt": prompt, "model": "veo3"}
                )
                answer.raise_for_status()
                return str(answer.json()["data"]), time.time() + duration

        submitted = await asyncio.gather(*(submit(d) for d in durations))
    now = datetime.now(UTC)
    later = now + timedelta(hours=1)
    ids = [f"video_budget{i:07d}" for i in range(tasks)]
    rows = [(ids[i], submitted[i][0], "budget benchmark", now, later) for i in range(tasks)]
    conn = await asyncpg.connect(infra.pg.dsn)
    try:
        await conn.executemany(INSERT, rows)
    finally:
        await conn.close()
    pool = await create_pool(RedisSettings.from_dsn(infra.redis.url), **ARQ_CODEC)
    try:
        # The first look at the product's POLL_FIRST_DELAY (10 s), spread over a second.
        await asyncio.gather(
            *(
                pool.enqueue_job(
                    "poll_task", task, 0, _job_id=f"poll:{task}:0", _defer_by=10 + n / tasks
                )
                for n, task in enumerate(ids)
            )
        )
    finally:
        await pool.aclose()
    return {ids[i]: submitted[i][1] for i in range(tasks)}


def _reset(infra: Infra, sim_url: str, tasks: int) -> None:
    infra.psql(
        "TRUNCATE video_tasks, credit_entries",
        "DELETE FROM accounts",
        'INSERT INTO accounts (client_id, "user", balance, held, updated_at)'  # noqa: S608
        f" VALUES ('bench', 'u0', 0, {PRICE * int(tasks)}, now())",
    )
    asyncio.run(_flush(infra.redis.url))
    httpx.post(f"{sim_url}/_sim/reset", timeout=10).raise_for_status()


async def _flush(url: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(url), **ARQ_CODEC)
    try:
        await pool.flushall()
    finally:
        await pool.aclose()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


async def _outcome(infra: Infra) -> list[tuple[str, str, datetime | None]]:
    conn = await asyncpg.connect(infra.pg.dsn)
    try:
        rows = await conn.fetch("SELECT id, status, completed_at FROM video_tasks")
    finally:
        await conn.close()
    return [(r["id"], r["status"], r["completed_at"]) for r in rows]


def _one(
    infra: Infra, sim_url: str, *, tasks: int, rate: float, seconds: float, workers: int
) -> dict[str, Any]:
    _reset(infra, sim_url, tasks)
    finishes = asyncio.run(_seed(infra, sim_url, tasks))
    env = _worker_env(infra, sim_url, level="WARNING")
    for name in ("POLL_FIRST_DELAY", "POLL_MIN_INTERVAL", "POLL_MAX_INTERVAL"):
        env.pop(f"GOOGLE_VIDEO_{name}")  # the product's default pacing
    env["GOOGLE_VIDEO_UPSTREAM_RATE_LIMIT"] = str(rate)
    started = time.time()
    children = [
        start_child(f"worker-budget-{n}", [PY, "-m", "cli.main", "worker"], env, infra.log_dir)
        for n in range(workers)
    ]
    try:
        time.sleep(seconds)
    finally:
        for child in children:
            child.stop()
    end = time.time()
    stats = httpx.get(f"{sim_url}/_sim/stats", timeout=30).json()
    per_second = {int(s): int(n) for s, n in stats["gets_per_second"].items()}
    first, last = int(started), int(end)
    windows = [sum(per_second.get(s, 0) for s in range(a, a + 10)) for a in range(first, last - 9)]
    outcome = asyncio.run(_outcome(infra))
    lags = sorted(
        ((done.timestamp() if done else end) - finishes[task])
        for task, _, done in outcome
        if finishes[task] <= end
    )
    return {
        "rate": rate,
        "max_gets_per_s_10s": max(windows, default=0) / 10,
        "gets_per_s_mean": sum(per_second.values()) / max(1.0, end - started),
        "finished_upstream": len(lags),
        "completed": sum(1 for _, status, _ in outcome if status == "completed"),
        "failed": sum(1 for _, status, _ in outcome if status == "failed"),
        "lag": {q: _percentile(lags, v) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))},
    }


def run(
    *, tasks: int = 2000, rate: float = 20.0, seconds: float = 120.0, rounds: int = 1
) -> dict[str, Any]:
    """Measure; returns ``{"params", "budget": [runs], "unlimited": [runs]}``."""
    started = time.monotonic()
    results: dict[str, Any] = {
        "params": {"tasks": tasks, "rate": rate, "seconds": seconds, "rounds": rounds},
        "budget": [],
        "unlimited": [],
    }
    with Infra() as infra:
        infra.migrate()
        sim, sim_url = start_simulator(infra)
        try:
            for _ in range(rounds):
                for mode, limit in (("budget", rate), ("unlimited", 0.0)):
                    one = _one(infra, sim_url, tasks=tasks, rate=limit, seconds=seconds, workers=3)
                    results[mode].append(one)
                    log(
                        f"budget: {mode} max {one['max_gets_per_s_10s']:.1f} GETs/s (10 s),"
                        f" lag p95 {one['lag']['p95']:.1f} s, failed {one['failed']}"
                    )
        finally:
            sim.stop()
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    return results


def markdown(r: dict[str, Any]) -> list[str]:
    """The section for bench/results.md."""
    p = r["params"]
    out = [
        "## Global upstream budget",
        "",
        f"{p['tasks']} running tasks (upstream durations 20-60 s), 3 workers, default pacing,"
        f" {p['seconds']:g} s per run; `UPSTREAM_RATE_LIMIT={p['rate']:g}` and no budget"
        f" measured alternately, {p['rounds']} round(s). GETs counted by the simulator.",
        "",
        "| run | max GETs/s over 10 s | mean GETs/s | finished upstream | completed | failed"
        " | lag p50 s | lag p95 s | lag p99 s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in ("budget", "unlimited"):
        for one in r[mode]:
            lag = one["lag"]
            out.append(
                f"| {mode} | {one['max_gets_per_s_10s']:.1f} | {one['gets_per_s_mean']:.1f}"
                f" | {one['finished_upstream']} | {one['completed']} | {one['failed']}"
                f" | {lag['p50']:.1f} | {lag['p95']:.1f} | {lag['p99']:.1f} |"
            )
    worst = max((one["max_gets_per_s_10s"] for one in r["budget"]), default=float("nan"))
    verdict = "meets" if worst <= 1.1 * p["rate"] else "**MISSED**"
    out += ["", f"Target ≤ {1.1 * p['rate']:g} GETs/s in every 10 s window: {verdict}.", ""]
    return out


def section(quick: bool = False) -> tuple[list[str], dict[str, Any]]:
    """Run (shortened when `quick`) and return the Markdown section and the figures."""
    figures = run(tasks=200, seconds=30) if quick else run()
    return markdown(figures), figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    figures = run(tasks=args.tasks, rate=args.rate, seconds=args.seconds, rounds=args.rounds)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
