"""Throughput of ``POST /v1/videos`` (text-to-video, JSON) served by the real API process,
against a raw-asyncpg reference and a bare Starlette endpoint, all in this run.

Targets, each one uvicorn process on uvloop + httptools:

- ``ours``: ``python -m cli.main api`` on a private PostgreSQL 15 + Redis (migrated, a
  client key, ``users`` accounts with a huge balance, max_concurrent_tasks_per_user raised
  to the maximum through ``PUT /v1/admin/config``);
- ``raw``: ``bench.ref_app`` ``POST /v1/videos``: conditional credit UPDATE + task INSERT
  + ledger INSERT in one transaction, then the ARQ enqueue (docs/architecture.md);
- ``bare``: ``bench.ref_app`` ``POST /bare``: parse the body, answer JSON.

Besides req/s and latency, each run records the CPU seconds the server process and
PostgreSQL burned per request, and how busy the whole machine was (other sessions on a
shared machine show up as ``foreign_cpu_s``).

Before every measured run the task and ledger tables are truncated, the balances reset and
Redis flushed, so every target starts from the same state. Targets run in alternating
order for ``rounds`` rounds; the best run of each counts.

``python -m bench.create [--seconds 10] [--users 1000] [--concurrency 32]`` prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from dataclasses import dataclass
from typing import Any

import httpx
import redis

from bench.common import (
    ADMIN_KEY,
    PY,
    UNLIMITED,
    CpuMeter,
    Infra,
    client_key,
    free_port,
    log,
    processes,
    seed_accounts_sql,
    start_child,
)
from bench.loadgen import LoadResult, run_python, run_wrk, wrk_available

BALANCE = 2_000_000_000  # accounts.balance is a 32-bit integer column
TARGETS = ("bare", "raw", "ours")


@dataclass
class Run:
    target: str
    round: int
    load: LoadResult
    cpu: dict[str, float]  # CPU seconds during the measured window, by process group
    rows: int  # tasks written during warm-up + measured window (0 for bare)
    new_sessions: int | None = None  # PostgreSQL connections opened during the window

    def as_dict(self) -> dict[str, Any]:
        n = max(1, self.load.requests)
        ours = sum(v for k, v in self.cpu.items() if k != "machine")
        return {
            "target": self.target,
            "round": self.round,
            **self.load.as_dict(),
            "cpu": {k: round(v, 3) for k, v in self.cpu.items()},
            "server_cpu_us_per_req": round(1e6 * self.cpu.get("server", 0.0) / n),
            "postgres_cpu_us_per_req": round(1e6 * self.cpu.get("postgres", 0.0) / n),
            "machine_busy_pct": round(
                100 * self.cpu.get("machine", 0.0) / ((os.cpu_count() or 1) * self.load.seconds)
            ),
            "foreign_cpu_s": round(max(0.0, self.cpu.get("machine", 0.0) - ours), 2),
            "rows": self.rows,
            "new_pg_sessions": self.new_sessions,
        }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _reset(infra: Infra, users: int) -> None:
    infra.psql(
        "TRUNCATE video_tasks, credit_entries CASCADE",
        "DELETE FROM accounts WHERE client_id = 'bench'",
        seed_accounts_sql(users, BALANCE),
        "VACUUM ANALYZE accounts",
    )
    with redis.Redis.from_url(infra.redis.url) as client:
        client.flushdb()


def _check_target(port: int, path: str, key: str) -> dict[str, Any]:
    body = {"prompt": "sanity check", "model": "veo3", "user": "u0"}
    response = httpx.post(
        f"http://127.0.0.1:{port}{path}",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    if response.status_code != 200:
        raise RuntimeError(f"{path} on {port}: {response.status_code} {response.text[:500]}")
    data: dict[str, Any] = response.json()
    return data


def _load(
    port: int,
    path: str,
    key: str,
    users: int,
    concurrency: int,
    seconds: float,
    warmup: float,
    meter: CpuMeter,
) -> tuple[LoadResult, dict[str, float]]:
    """(result, CPU seconds by group over the measured window, incl. the generator's)."""
    if wrk_available():
        run_wrk(port, path, key, users, concurrency, warmup)  # warm-up, discarded
        meter.start()
        before = _children_cpu()
        result = run_wrk(port, path, key, users, concurrency, seconds)
        gen = _children_cpu() - before
        return result, {**meter.stop(), "loadgen": gen}
    # The Python generator warms up inside its own process: scale to the window.
    meter.start()
    before = _children_cpu()
    t0 = time.monotonic()
    result = run_python(port, path, key, users, concurrency, seconds, warmup)
    share = seconds / (time.monotonic() - t0)
    cpu = {k: v * share for k, v in meter.stop().items()}
    return result, {**cpu, "loadgen": (_children_cpu() - before) * share}


def run(
    *,
    seconds: float = 10.0,
    warmup: float = 2.0,
    concurrency: int = 32,
    users: int = 1000,
    rounds: int = 2,
) -> dict[str, Any]:
    """Run the benchmark."""
    started = time.monotonic()
    with Infra() as infra:
        infra.migrate()
        key = client_key(infra)
        _reset(infra, users)
        api_port, ref_port = free_port(), free_port()
        api = start_child(
            "api",
            [PY, "-m", "cli.main", "api", "--port", str(api_port)],
            infra.env(),
            infra.log_dir,
            port=api_port,
        )
        ref = start_child(
            "ref",
            [
                PY,
                "-m",
                "bench.ref_app",
                "--port",
                str(ref_port),
                "--dsn",
                infra.pg.dsn,
                "--redis",
                infra.redis.url,
            ],
            infra.env(),
            infra.log_dir,
            port=ref_port,
        )
        try:
            config = httpx.put(
                f"http://127.0.0.1:{api_port}/v1/admin/config",
                json={"max_concurrent_tasks_per_user": 10_000, **UNLIMITED},
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                timeout=10,
            )
            config.raise_for_status()
            # Sanity: each target answers 200 and the two creates write a task + enqueue.
            ours_video = _check_target(api_port, "/v1/videos", key)
            raw_video = _check_target(ref_port, "/v1/videos", key)
            _check_target(ref_port, "/bare", key)
            with redis.Redis.from_url(infra.redis.url) as client:
                queued = client.zcard("arq:queue")
            tasks = int(infra.psql("SELECT count(*) FROM video_tasks"))
            holds = int(infra.psql("SELECT count(*) FROM credit_entries WHERE kind = 'hold'"))
            if (queued, tasks, holds) != (2, 2, 2):
                raise RuntimeError(f"sanity: queued={queued} tasks={tasks} holds={holds}")
            log(f"create: sanity ok ({ours_video['id']}, {raw_video['id']})")

            targets = {
                "ours": (api, api_port, "/v1/videos"),
                "raw": (ref, ref_port, "/v1/videos"),
                "bare": (ref, ref_port, "/bare"),
            }
            runs: list[Run] = []
            for round_no in range(rounds):
                order = TARGETS if round_no % 2 == 0 else tuple(reversed(TARGETS))
                for name in order:
                    child, port, path = targets[name]
                    _reset(infra, users)
                    meter = CpuMeter(
                        {
                            "server": processes(child),
                            "postgres": infra.pg_processes,
                            "redis": infra.redis_processes,
                        },
                        infra,
                    )
                    result, cpu = _load(port, path, key, users, concurrency, seconds, warmup, meter)
                    count = "SELECT count(*) FROM video_tasks"
                    rows = 0 if name == "bare" else int(infra.psql(count))
                    runs.append(Run(name, round_no, result, cpu, rows, meter.new_sessions))
                    log(
                        f"create: round {round_no} {name:4s} {result.rps:8.0f} req/s"
                        f" p50 {result.p50_ms:.1f} ms p99 {result.p99_ms:.1f} ms"
                        f" non2xx {result.non_2xx} errors {result.socket_errors}"
                    )
                    if not child.alive:
                        raise RuntimeError(f"{child.name} died:\n{child.log_tail()}")
        finally:
            api.stop()
            ref.stop()
        api_log_lines = sum(1 for _ in (infra.log_dir / "api.log").open(errors="replace"))
    best = {
        name: max((r for r in runs if r.target == name), key=lambda r: r.load.rps)
        for name in TARGETS
    }
    return {
        "params": {
            "seconds": seconds,
            "warmup": warmup,
            "concurrency": concurrency,
            "users": users,
            "rounds": rounds,
            "generator": "wrk -t1" if wrk_available() else "python asyncio",
        },
        "runs": [r.as_dict() for r in runs],
        "best": {name: r.as_dict() for name, r in best.items()},
        "ratio_ours_raw": best["ours"].load.rps / best["raw"].load.rps,
        "ratio_ours_bare": best["ours"].load.rps / best["bare"].load.rps,
        "ratio_raw_bare": best["raw"].load.rps / best["bare"].load.rps,
        "api_log_lines": api_log_lines,
        "wall_seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    result = run(
        seconds=args.seconds,
        warmup=args.warmup,
        concurrency=args.concurrency,
        users=args.users,
        rounds=args.rounds,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
