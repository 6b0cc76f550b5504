"""Schedule drift of one worker tracking many running tasks (target in docs/architecture.md:
5,000 tasks, drift p99 ≤ 1 s).

``tasks`` tasks run upstream in the simulator (``[sim:duration=100000]``) and are written
as ``running`` rows straight into the database (the API create path is measured by
``bench.create``; seeding thousands of rows through it would take minutes here). Pacing is
MIN = MAX = ``interval`` (the most lenient production setting is the 30 s maximum), the
first hops are spread evenly over one interval, and one real worker
(``google-video worker`` under ``bench.drift_worker``) polls them. Drift is hop
start minus its scheduled time, read from ARQ's own queue score, over ``seconds`` after
``warmup``.

Then the worker's ceiling: a fresh worker on the same tasks with the interval shrunk to
1 ms (every task due at once, drift growing without bound) runs flat out for
``saturation_seconds``; its hops/s (growth of ``sum(video_tasks.polls)``) is what one
worker sustains, and 5,000 tasks stay on schedule while 5,000 / interval is below it.

``python -m bench.drift [--tasks 5000] [--interval 30]`` prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from arq import create_pool
from arq.connections import RedisSettings

from bench.common import (
    PY,
    SIM_KEY,
    CpuMeter,
    Infra,
    log,
    processes,
    start_child,
    start_simulator,
)
from bench.poll_hop import PROMPT, _ours_counter, _seed_ours, _worker_env
from core.queue_codec import ARQ_CODEC

INSERT = """
INSERT INTO video_tasks (
    id, client_id, "user", task_type, status, upstream_task_id, upstream_action, model,
    prompt, enhance_prompt, images, input_refs, upstream_submit_time, progress,
    storage_status, price, request_snapshot, upstream_response, metadata, polls,
    submit_attempts, created_at, updated_at, next_attempt_at
) VALUES (
    $1, 'bench', 'u0', 'text_to_video', 'running', $2, 'google-videos', 'veo3',
    $3, false, '[]', '[]', $4, 0,
    'pending', 100, '{}', '{}', '{}', 0,
    1, $4, $4, $5
)
"""


async def _seed(infra: Infra, sim_url: str, tasks: int, interval: float) -> None:
    limit = asyncio.Semaphore(32)
    async with httpx.AsyncClient(
        base_url=sim_url, headers={"Authorization": f"Bearer {SIM_KEY}"}, timeout=30
    ) as client:

        async def submit(i: int) -> str:
            async with limit:
                r = await client.post(
                    "/google/v1/models/veo/videos", json={"prompt": PROMPT, "model": "veo3"}
                )
                r.raise_for_status()
                return str(r.json()["data"])

        upstream = await asyncio.gather(*(submit(i) for i in range(tasks)))
    now = datetime.now(UTC)
    far = datetime.fromtimestamp(time.time() + 3600, UTC)  # keep the reconciler away
    ids = [f"video_drift{i:07d}" for i in range(tasks)]
    conn = await asyncpg.connect(infra.pg.dsn)
    try:
        await conn.executemany(
            INSERT, [(ids[i], upstream[i], PROMPT, now, far) for i in range(tasks)]
        )
    finally:
        await conn.close()
    pool = await create_pool(RedisSettings.from_dsn(infra.redis.url), **ARQ_CODEC)
    # Due times from one origin: relative to each enqueue (5,000 enqueues take seconds),
    # the last tasks' first hops would overlap the first tasks' second ones.
    origin = time.time() + 1
    try:
        for i, task_id in enumerate(ids):
            await pool.enqueue_job(
                "poll_task",
                task_id,
                0,
                _job_id=f"poll:{task_id}:0",
                _defer_until=datetime.fromtimestamp(origin + interval * i / tasks, UTC),
            )
    finally:
        await pool.aclose()


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _saturation(infra: Infra, sim: Any, sim_url: str, seconds: float) -> dict[str, Any]:
    """Hops/s of one worker with every running task due at once (1 ms pacing)."""
    infra.psql(
        "UPDATE video_tasks SET next_attempt_at = now() + interval '10 minutes'"
        " WHERE status = 'running'"
    )
    _, _, polls = _ours_counter(infra)
    asyncio.run(_seed_ours(infra.redis.url, sorted(polls.items())))
    worker = start_child(
        "worker-saturation",
        [PY, "-m", "cli.main", "worker"],
        _worker_env(infra, sim_url),
        infra.log_dir,
    )
    try:
        first = _ours_counter(infra)[0]
        deadline = time.monotonic() + 30
        while _ours_counter(infra)[0] == first:
            if time.monotonic() > deadline or not worker.alive:
                raise RuntimeError(f"saturation: no hops:\n{worker.log_tail()}")
            time.sleep(0.2)
        time.sleep(3)
        meter = CpuMeter({"worker": processes(worker), "simulator": processes(sim)}, infra)
        meter.start()
        c0, t0, _ = _ours_counter(infra)
        time.sleep(seconds)
        c1, t1, _ = _ours_counter(infra)
        cpu = meter.stop()
    finally:
        worker.stop()
    hops = c1 - c0
    return {
        "seconds": round(t1 - t0, 2),
        "hops": hops,
        "hops_per_s": hops / (t1 - t0) if t1 > t0 else 0.0,
        "worker_cpu_pct": 100 * cpu.get("worker", 0.0) / max(1e-9, t1 - t0),
        "worker_cpu_us_per_hop": round(1e6 * cpu.get("worker", 0.0) / hops, 1) if hops else None,
        "machine_busy_pct": round(
            100 * cpu.get("machine", 0.0) / ((os.cpu_count() or 1) * max(1e-9, t1 - t0))
        ),
    }


def run(
    *,
    tasks: int = 5000,
    interval: float = 30.0,
    seconds: float = 60.0,
    warmup: float = 30.0,
    saturation_seconds: float = 15.0,
) -> dict[str, Any]:
    started = time.monotonic()
    with Infra() as infra:
        infra.migrate()
        sim, sim_url = start_simulator(infra)
        out = infra.base / "drift.json"
        try:
            asyncio.run(_seed(infra, sim_url, tasks, interval))
            log(f"drift: {tasks} running tasks seeded")
            env = _worker_env(infra, sim_url)
            env.update(
                {
                    "GOOGLE_VIDEO_POLL_MIN_INTERVAL": str(interval),
                    "GOOGLE_VIDEO_POLL_MAX_INTERVAL": str(interval),
                    "BENCH_DRIFT_OUT": str(out),
                }
            )
            worker = start_child(
                "worker-drift", [PY, "-m", "bench.drift_worker"], env, infra.log_dir
            )
            try:
                window_start = time.time() + warmup
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
                meter.start()
                time.sleep(seconds)
                cpu = meter.stop()
                window_end = time.time()
                time.sleep(1.5)  # let the last dump land
                if not worker.alive:
                    raise RuntimeError(f"drift worker died:\n{worker.log_tail()}")
            finally:
                worker.stop()
            samples = json.loads(out.read_text()) if out.exists() else []
            saturation = (
                _saturation(infra, sim, sim_url, saturation_seconds) if saturation_seconds else None
            )
            not_running = infra.psql("SELECT count(*) FROM video_tasks WHERE status <> 'running'")
        finally:
            sim.stop()
    lo, hi = window_start * 1000, window_end * 1000
    late = sorted(max(0, s[1]) / 1000 for s in samples if lo <= s[0] <= hi)
    result: dict[str, Any] = {
        "params": {
            "tasks": tasks,
            "interval": interval,
            "seconds": seconds,
            "warmup": warmup,
            "saturation_seconds": saturation_seconds,
        },
        "saturation": saturation,
        "hops": len(late),
        "hops_per_s": len(late) / (window_end - window_start),
        "seconds": window_end - window_start,
        "drift": {
            "p50": _percentile(late, 0.50),
            "p99": _percentile(late, 0.99),
            "max": late[-1] if late else float("nan"),
        },
        "worker_cpu_pct": 100 * cpu.get("worker", 0.0) / (window_end - window_start),
        "machine_busy_pct": round(
            100 * cpu.get("machine", 0.0) / ((os.cpu_count() or 1) * (window_end - window_start))
        ),
        "cpu": {k: round(v, 2) for k, v in cpu.items()},
        "new_pg_sessions": meter.new_sessions,
        "foreign_cpu_s": round(
            max(0.0, cpu.get("machine", 0.0) - sum(v for k, v in cpu.items() if k != "machine")),
            2,
        ),
        "tasks_not_running_at_end": int(not_running),
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    log(
        f"drift: {result['hops_per_s']:.0f} hops/s (demand {tasks / interval:.0f}),"
        f" p50 {result['drift']['p50']:.3f} s p99 {result['drift']['p99']:.3f} s;"
        f" one worker sustains {saturation['hops_per_s'] if saturation else float('nan'):.0f}"
        " hops/s flat out"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--saturation-seconds", type=float, default=15.0)
    args = parser.parse_args()
    print(
        json.dumps(
            run(
                tasks=args.tasks,
                interval=args.interval,
                seconds=args.seconds,
                warmup=args.warmup,
                saturation_seconds=args.saturation_seconds,
            ),
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
