"""Throughput of self-rescheduling poll hops in ONE worker process, against a raw ARQ hop.

- ``ours``: ``python -m cli.main worker`` running the real ``poll_task`` against the
  simulator. ``chains`` tasks are created through the real API (``[sim:duration=100000]``
  keeps them running upstream) and submitted by the real worker; poll pacing is squeezed
  to 1 ms (GOOGLE_VIDEO_POLL_FIRST_DELAY=0, MIN/MAX_INTERVAL=0.001) so hops run back to
  back. Hops are counted as the growth of ``sum(video_tasks.polls)`` (one per hop that
  recorded its answer), cross-checked with the simulator's ``polls_total``.
- ``ours-warn``: the same at GOOGLE_VIDEO_LOG_LEVEL=WARNING (what per-hop INFO logging
  costs).
- ``fair``: the target's reference, ``bench.fair_worker``: a raw ARQ job doing the same
  I/O as ours (asyncpg SELECT of the hop's columns, httpx GET of the task at the same
  simulator, asyncpg conditional UPDATE, deferred re-enqueue) on the same running tasks,
  counted the same way (``sum(video_tasks.polls)``).
- ``before``: with ``--baseline DIR`` (a checkout of an earlier commit, e.g. from
  ``git archive``), ours as that code runs it: the same worker command with ``DIR`` first
  on the import path (``python -P``), on the same database and tasks.
- ``raw``: ``bench.raw_worker``: an ARQ job that only re-enqueues itself with the same
  1 ms defer, same max_jobs/poll_delay/uvloop; ``chains`` chains (no I/O: an extra row).

Before each run Redis is flushed and one head job per chain enqueued (for ours: the poll
the task's counter expects, the reconciler's move); targets alternate over ``rounds``
rounds; the best run of each counts.

``python -m bench.poll_hop [--seconds 8] [--chains 400]`` prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
from arq import create_pool
from arq.connections import RedisSettings

from bench import fair_worker
from bench.common import (
    PY,
    SIM_KEY,
    UNLIMITED,
    Child,
    CpuMeter,
    Infra,
    client_key,
    free_port,
    log,
    processes,
    seed_accounts_sql,
    start_child,
    start_simulator,
)
from bench.raw_worker import COUNTER_KEY, JOB, job_id
from core.queue_codec import ARQ_CODEC

PROMPT = "[sim:duration=100000] poll hop benchmark"
BALANCE = 2_000_000_000
TARGETS = ("fair", "ours", "raw")


@dataclass
class HopRun:
    target: str
    round: int
    hops: int
    seconds: float
    chains_advanced: int
    sim_polls: int | None
    cpu: dict[str, float]
    log_lines: int
    new_sessions: int | None = None

    @property
    def rate(self) -> float:
        return self.hops / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "round": self.round,
            "hops": self.hops,
            "seconds": round(self.seconds, 3),
            "hops_per_s": round(self.rate, 1),
            "chains_advanced": self.chains_advanced,
            "sim_polls": self.sim_polls,
            "cpu": {k: round(v, 3) for k, v in self.cpu.items()},
            "worker_cpu_us_per_hop": round(1e6 * self.cpu.get("worker", 0) / self.hops, 1)
            if self.hops
            else None,
            "postgres_cpu_us_per_hop": round(1e6 * self.cpu.get("postgres", 0) / self.hops, 1)
            if self.hops
            else None,
            "simulator_cpu_us_per_hop": round(1e6 * self.cpu.get("simulator", 0) / self.hops, 1)
            if self.hops
            else None,
            "machine_busy_pct": round(
                100 * self.cpu.get("machine", 0.0) / ((os.cpu_count() or 1) * self.seconds)
            )
            if self.seconds
            else None,
            "foreign_cpu_s": round(
                max(
                    0.0,
                    self.cpu.get("machine", 0.0)
                    - sum(v for k, v in self.cpu.items() if k != "machine"),
                ),
                2,
            ),
            "log_lines": self.log_lines,
            "new_pg_sessions": self.new_sessions,
        }


def _worker_env(infra: Infra, sim_url: str, level: str = "INFO") -> dict[str, str]:
    return infra.env(
        {
            "GOOGLE_VIDEO_UPSTREAM_KIND": "simulator",
            "GOOGLE_VIDEO_UPSTREAM_BASE_URL": sim_url,
            "GOOGLE_VIDEO_UPSTREAM_API_KEY": SIM_KEY,
            "GOOGLE_VIDEO_POLL_FIRST_DELAY": "0",
            "GOOGLE_VIDEO_POLL_MIN_INTERVAL": "0.001",
            "GOOGLE_VIDEO_POLL_MAX_INTERVAL": "0.001",
            "GOOGLE_VIDEO_WORKER_DRAIN_SECONDS": "2",
            "GOOGLE_VIDEO_UPSTREAM_TIMEOUT_SECONDS": "10",
            "GOOGLE_VIDEO_LOG_LEVEL": level,
        }
    )


async def _create_tasks(port: int, key: str, count: int) -> None:
    limit = asyncio.Semaphore(16)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as client:

        async def one(i: int) -> None:
            async with limit:
                r = await client.post("/v1/videos", json={"prompt": PROMPT, "user": f"u{i % 50}"})
                r.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(count)))


def _setup(infra: Infra, sim_url: str, chains: int) -> None:
    """Create ``chains`` tasks through the API and let the real worker submit them."""
    key = client_key(infra)
    infra.psql(seed_accounts_sql(50, BALANCE))
    env = _worker_env(infra, sim_url)
    port = free_port()
    api = start_child(
        "setup-api",
        [PY, "-m", "cli.main", "api", "--port", str(port)],
        env,
        infra.log_dir,
        port=port,
    )
    try:
        from bench.common import ADMIN_KEY

        httpx.put(
            f"http://127.0.0.1:{port}/v1/admin/config",
            json={
                "max_concurrent_tasks_per_user": 10_000,
                "task_timeout_seconds": 3600,
                **UNLIMITED,
            },
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=10,
        ).raise_for_status()
        asyncio.run(_create_tasks(port, key, chains))
    finally:
        api.stop()
    worker = start_child("setup-worker", [PY, "-m", "cli.main", "worker"], env, infra.log_dir)
    try:
        deadline = time.monotonic() + 90
        while True:
            running = int(infra.psql("SELECT count(*) FROM video_tasks WHERE status = 'running'"))
            if running == chains:
                break
            if time.monotonic() > deadline or not worker.alive:
                raise RuntimeError(f"only {running}/{chains} tasks running:\n{worker.log_tail()}")
            time.sleep(0.3)
    finally:
        worker.stop()
    bad = infra.psql("SELECT count(*) FROM video_tasks WHERE status <> 'running'")
    if bad != "0":
        raise RuntimeError(f"{bad} tasks left the running state during setup")


async def _seed_ours(redis_url: str, heads: list[tuple[str, int]]) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_url), **ARQ_CODEC)
    try:
        await pool.flushdb()
        for task_id, polls in heads:
            await pool.enqueue_job("poll_task", task_id, polls, _job_id=f"poll:{task_id}:{polls}")
    finally:
        await pool.aclose()


async def _seed_fair(redis_url: str, heads: list[tuple[str, int]]) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_url), **ARQ_CODEC)
    try:
        await pool.flushdb()
        for task_id, polls in heads:
            job = fair_worker.job_id(task_id, polls)
            await pool.enqueue_job(fair_worker.JOB, task_id, polls, _job_id=job)
    finally:
        await pool.aclose()


async def _seed_raw(redis_url: str, chains: int) -> None:
    pool = await create_pool(RedisSettings.from_dsn(redis_url), **ARQ_CODEC)
    try:
        await pool.flushdb()
        for chain in range(chains):
            await pool.enqueue_job(JOB, chain, 0, _job_id=job_id(chain, 0))
    finally:
        await pool.aclose()


def _ours_counter(infra: Infra) -> tuple[int, float, dict[str, int]]:
    out = infra.psql(
        "SELECT id, polls, extract(epoch from clock_timestamp()) FROM video_tasks"
        " WHERE status = 'running'"
    )
    polls: dict[str, int] = {}
    stamp = 0.0
    for line in out.splitlines():
        task_id, count, when = line.split("|")
        polls[task_id] = int(count)
        stamp = max(stamp, float(when))
    return sum(polls.values()), stamp, polls


def _raw_counter(infra: Infra) -> tuple[int, float]:
    with redis.Redis.from_url(infra.redis.url) as client:
        raw = client.get(COUNTER_KEY)
    if raw is None:
        return 0, time.time()
    count, stamp = raw.decode().split()
    return int(count), float(stamp)


def _sim_polls(sim_url: str) -> int:
    return int(httpx.get(f"{sim_url}/_sim/stats", timeout=10).json()["polls_total"])


def _one_run(
    infra: Infra,
    sim: Child,
    sim_url: str,
    target: str,
    round_no: int,
    chains: int,
    seconds: float,
    warmup: float,
    baseline: Path | None = None,
) -> HopRun:
    ours = target.startswith("ours") or target == "before"
    counted_in_db = ours or target == "fair"
    if target == "fair":
        _, _, polls = _ours_counter(infra)
        asyncio.run(_seed_fair(infra.redis.url, sorted(polls.items())))
        env = infra.env()
        command = [PY, "-m", "bench.fair_worker", "--redis", infra.redis.url]
        command += ["--database", infra.pg.dsn, "--upstream", sim_url, "--key", SIM_KEY]
        command += ["--max-jobs", env.get("GOOGLE_VIDEO_WORKER_MAX_JOBS", "200")]
        command += ["--delay", "0.001"]
    elif ours:
        # Keep the reconciler away (it would add duplicate chains) and seed the heads.
        infra.psql(
            "UPDATE video_tasks SET next_attempt_at = now() + interval '10 minutes'"
            " WHERE status = 'running'"
        )
        _, _, polls = _ours_counter(infra)
        asyncio.run(_seed_ours(infra.redis.url, sorted(polls.items())))
        env = _worker_env(infra, sim_url, "WARNING" if target == "ours-warn" else "INFO")
        command = [PY, "-m", "cli.main", "worker"]
        if target == "before":
            if baseline is None:
                raise ValueError("the before target needs --baseline")
            env["PYTHONPATH"] = str(baseline)
            command = [PY, "-P", "-m", "cli.main", "worker"]
    else:
        asyncio.run(_seed_raw(infra.redis.url, chains))
        env = infra.env()
        command = [PY, "-m", "bench.raw_worker", "--redis", infra.redis.url]
        command += ["--max-jobs", env.get("GOOGLE_VIDEO_WORKER_MAX_JOBS", "200")]
        command += ["--delay", "0.001"]

    def counter() -> int:
        return _ours_counter(infra)[0] if counted_in_db else _raw_counter(infra)[0]

    worker = start_child(f"worker-{target}-{round_no}", command, env, infra.log_dir)
    try:
        start_count = counter()
        deadline = time.monotonic() + 30
        while counter() == start_count:  # wait for the first hops (imports, start-up)
            if time.monotonic() > deadline or not worker.alive:
                raise RuntimeError(f"{target}: no hops:\n{worker.log_tail()}")
            time.sleep(0.1)
        time.sleep(warmup)
        meter = CpuMeter(
            {
                "worker": processes(worker),
                "postgres": infra.pg_processes,
                "redis": infra.redis_processes,
                "simulator": processes(sim),
            },
            infra,
        )
        log_before = _lines(worker)
        meter.start()
        if counted_in_db:
            c0, t0, p0 = _ours_counter(infra)
            s0 = _sim_polls(sim_url)
        else:
            c0, t0 = _raw_counter(infra)
        time.sleep(seconds)
        if counted_in_db:
            c1, t1, p1 = _ours_counter(infra)
            s1 = _sim_polls(sim_url)
            advanced = sum(1 for k, v in p1.items() if v > p0.get(k, 0))
            sim_polls: int | None = s1 - s0
        else:
            c1, t1 = _raw_counter(infra)
            advanced, sim_polls = chains, None
        cpu = meter.stop()
        log_lines = _lines(worker) - log_before
        if not worker.alive:
            raise RuntimeError(f"{target} worker died:\n{worker.log_tail()}")
    finally:
        worker.stop()
    return HopRun(
        target, round_no, c1 - c0, t1 - t0, advanced, sim_polls, cpu, log_lines, meter.new_sessions
    )


def _lines(child: Child) -> int:
    if child.log_path is None:
        return 0
    try:
        with child.log_path.open("rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return 0


def run(
    *,
    seconds: float = 8.0,
    warmup: float = 2.0,
    chains: int = 400,
    rounds: int = 5,
    targets: tuple[str, ...] = TARGETS,
    baseline: Path | None = None,
) -> dict[str, Any]:
    started = time.monotonic()
    runs: list[HopRun] = []
    with Infra() as infra:
        infra.migrate()
        sim, sim_url = start_simulator(infra)
        try:
            _setup(infra, sim_url, chains)
            log(f"poll_hop: {chains} tasks running upstream")
            for round_no in range(rounds):
                order = targets if round_no % 2 == 0 else tuple(reversed(targets))
                for target in order:
                    hop = _one_run(
                        infra, sim, sim_url, target, round_no, chains, seconds, warmup, baseline
                    )
                    runs.append(hop)
                    log(
                        f"poll_hop: round {round_no} {target:9s} {hop.rate:7.0f} hops/s"
                        f" ({hop.chains_advanced}/{chains} chains advanced,"
                        f" sim polls {hop.sim_polls}, worker CPU"
                        f" {hop.as_dict()['worker_cpu_us_per_hop']} us/hop)"
                    )
            failed = infra.psql("SELECT count(*) FROM video_tasks WHERE status <> 'running'")
        finally:
            sim.stop()
    best = {t: max((r for r in runs if r.target == t), key=lambda r: r.rate) for t in targets}
    result: dict[str, Any] = {
        "params": {
            "seconds": seconds,
            "warmup": warmup,
            "chains": chains,
            "rounds": rounds,
            "max_jobs": 200,
            "poll_delay_s": 0.025,
            "defer_s": 0.001,
        },
        "runs": [r.as_dict() for r in runs],
        "best": {t: r.as_dict() for t, r in best.items()},
        "tasks_not_running_at_end": int(failed),
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    if "ours" in best and "raw" in best:
        result["ratio_ours_raw"] = best["ours"].rate / best["raw"].rate
    if "ours-warn" in best and "raw" in best:
        result["ratio_ours_warn_raw"] = best["ours-warn"].rate / best["raw"].rate
    if "ours" in best and "fair" in best:
        result["ratio_ours_fair"] = best["ours"].rate / best["fair"].rate
        result["ratio_ours_fair_by_round"] = _paired_ratios(runs, "ours")
    if "before" in best and "fair" in best:
        result["ratio_before_fair"] = best["before"].rate / best["fair"].rate
        result["ratio_before_fair_by_round"] = _paired_ratios(runs, "before")
    return result


def _paired_ratios(runs: list[HopRun], target: str) -> list[float]:
    """``target`` / fair hops/s within each round (measured back to back)."""
    ratios = []
    for round_no in sorted({r.round for r in runs}):
        pair = {r.target: r.rate for r in runs if r.round == round_no}
        if pair.get("fair") and target in pair:
            ratios.append(round(pair[target] / pair["fair"], 3))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--chains", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--baseline", type=Path, help="an earlier checkout: the before target")
    args = parser.parse_args()
    result = run(
        seconds=args.seconds,
        warmup=args.warmup,
        chains=args.chains,
        rounds=args.rounds,
        targets=tuple(args.targets.split(",")),
        baseline=args.baseline,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
