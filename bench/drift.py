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
from bench.poll_hop import PROMPT, _worker_env
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
    try:
        for i, task_id in enumerate(ids):
            await pool.enqueue_job(
                "poll_task",
                task_id,
                0,
                _job_id=f"poll:{task_id}:0",
                _defer_by=interval * i / tasks,
            )
    finally:
        await pool.aclose()


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run(
    *, tasks: int = 5000, interval: float = 30.0, seconds: float = 60.0, warmup: float = 30.0
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
            not_running = infra.psql("SELECT count(*) FROM video_tasks WHERE status <> 'running'")
        finally:
            sim.stop()
    lo, hi = window_start * 1000, window_end * 1000
    late = sorted(max(0, s[1]) / 1000 for s in samples if lo <= s[0] <= hi)
    result = {
        "params": {"tasks": tasks, "interval": interval, "seconds": seconds, "warmup": warmup},
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
        f" p50 {result['drift']['p50']:.3f} s p99 {result['drift']['p99']:.3f} s"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=30.0)
    args = parser.parse_args()
    print(
        json.dumps(
            run(
                tasks=args.tasks,
                interval=args.interval,
                seconds=args.seconds,
                warmup=args.warmup,
            ),
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
