"""The *fair* reference poll hop: a raw ARQ job doing the same I/O as ``poll_task``.

Per hop: an asyncpg SELECT of the hop's columns (those of ``core.repo.tasks.PollView``),
an httpx GET of the task at the same simulator (the gateway's task URL, Bearer key), an
asyncpg conditional UPDATE writing what a hop writes (polls + 1, the answer as
``upstream_response``, progress, updated_at, next_attempt_at), then the next hop enqueued
deferred. No SQLAlchemy, no structlog, no pacing or config reads, no task history row.

Same worker options as ``bench.raw_worker`` (max_jobs, poll_delay, keep_result, uvloop,
no per-job result logs). Hops are counted by the benchmark as the growth of
``sum(video_tasks.polls)``, like ours.

Run: ``python -m bench.fair_worker --redis redis://… --database postgresql://…
--upstream http://… --key … [--max-jobs 200] [--delay 0.001]``; chains are seeded by the
benchmark (``fair_hop(task_id, polls)`` jobs).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx

from bench.raw_worker import run_worker

JOB = "fair_hop"
SELECT = (
    "SELECT id, status, model, polls, upstream_task_id, created_at, upstream_submit_time,"
    " upstream_response, request_id, upstream_route FROM video_tasks WHERE id = $1"
)
UPDATE = (
    "UPDATE video_tasks SET polls = $3 + 1, upstream_response = $4,"
    " progress = greatest(progress, $5), updated_at = $6, next_attempt_at = $7"
    " WHERE id = $1 AND status = $2 AND polls = $3"
)
_state: dict[str, Any] = {}


def job_id(task_id: str, polls: int) -> str:
    return f"fair:{task_id}:{polls}"


async def fair_hop(ctx: dict[str, Any], task_id: str, polls: int) -> str:
    pool: asyncpg.Pool = _state["pg"]
    row = await pool.fetchrow(SELECT, task_id)
    if row is None or row["status"] != "running" or row["polls"] != polls:
        return "skipped"
    client: httpx.AsyncClient = _state["http"]
    url = f"{_state['base']}/google/v1/tasks/{quote(row['upstream_task_id'], safe='')}"
    response = await client.get(url, headers=_state["headers"])
    response.raise_for_status()
    answer = response.json()
    data = answer.get("data") if isinstance(answer, dict) else None
    progress = _progress(data.get("progress") if isinstance(data, dict) else None)
    now = datetime.now(UTC)
    delay = _state["delay"]
    status = await pool.execute(
        UPDATE,
        task_id,
        "running",
        polls,
        json.dumps(answer),
        progress,
        now,
        now + timedelta(seconds=delay + 60),
    )
    if status == "UPDATE 1":
        await ctx["redis"].enqueue_job(
            JOB, task_id, polls + 1, _job_id=job_id(task_id, polls + 1), _defer_by=delay
        )
    return "pending"


def _progress(value: object) -> int:
    """The gateway's ``"42%"`` (or a number) as 0-99."""
    try:
        number = int(float(str(value).rstrip("%")))
    except ValueError:
        return 0
    return min(99, max(0, number))


async def on_startup(ctx: dict[str, Any]) -> None:
    _state["pg"] = await asyncpg.create_pool(_state["dsn"], min_size=20, max_size=20)
    _state["http"] = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))


async def on_shutdown(ctx: dict[str, Any]) -> None:
    await _state["http"].aclose()
    await _state["pg"].close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--database", required=True, help="a postgresql:// DSN")
    parser.add_argument("--upstream", required=True, help="the simulator's base URL")
    parser.add_argument("--key", required=True)
    parser.add_argument("--max-jobs", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.001)
    args = parser.parse_args()
    _state.update(
        dsn=args.database,
        base=args.upstream.rstrip("/"),
        headers={"Authorization": f"Bearer {args.key}"},
        delay=args.delay,
    )
    run_worker(fair_hop, JOB, args.redis, args.max_jobs, on_startup, on_shutdown)


if __name__ == "__main__":
    main()
