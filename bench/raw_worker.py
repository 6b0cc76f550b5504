"""The reference poll hop: an ARQ job that only re-enqueues itself (docs/architecture.md).

Same worker options as ``google-video worker`` where they matter for throughput
(max_jobs, poll_delay, keep_result, timeout/max_tries, uvloop, no per-job result logs);
no database, no upstream, no logging configuration (arq's INFO lines are dropped).

The hop count lives in the process and is published to Redis every 50 ms as
``"<count> <unix time>"`` under ``bench:hops`` (an INCR per hop would add a round trip
to the very thing being measured).

Run: ``python -m bench.raw_worker --redis redis://… [--max-jobs 200] [--delay 0.001]``;
chains are seeded by the benchmark (``hop(i, 0)`` jobs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

import uvloop
from arq import func
from arq.connections import RedisSettings
from arq.typing import StartupShutdown, WorkerCoroutine
from arq.worker import Worker

from core.queue_codec import ARQ_CODEC

COUNTER_KEY = "bench:hops"
JOB = "hop"
_state = {"count": 0, "delay": 0.001}


def job_id(chain: int, n: int) -> str:
    return f"hop:{chain}:{n}"


async def hop(ctx: dict[str, Any], chain: int, n: int) -> str:
    _state["count"] += 1
    await ctx["redis"].enqueue_job(
        JOB, chain, n + 1, _job_id=job_id(chain, n + 1), _defer_by=_state["delay"]
    )
    return "pending"


async def _publish(ctx: dict[str, Any]) -> None:
    while True:
        await ctx["redis"].set(COUNTER_KEY, f"{_state['count']} {time.time():.6f}")
        await asyncio.sleep(0.05)


async def on_startup(ctx: dict[str, Any]) -> None:
    ctx["publisher"] = asyncio.create_task(_publish(ctx))


async def on_shutdown(ctx: dict[str, Any]) -> None:
    task = ctx.get("publisher")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def run_worker(
    job: WorkerCoroutine,
    name: str,
    redis: str,
    max_jobs: int,
    on_startup: StartupShutdown,
    on_shutdown: StartupShutdown,
) -> None:
    """Run ``job`` (as ``name``) in an ARQ worker under the settings every reference hop
    shares with the product's worker (uvloop, ``poll_delay`` 0.025 s as
    ``worker.options.POLL_DELAY_SECONDS``, ``max_jobs``), until
    SIGTERM/SIGINT."""
    asyncio.set_event_loop(uvloop.new_event_loop())
    Worker(
        functions=[func(job, name=name, timeout=60, max_tries=3)],
        redis_settings=RedisSettings.from_dsn(redis),
        **ARQ_CODEC,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        max_jobs=max_jobs,
        keep_result=0,
        job_completion_wait=2,
        health_check_interval=5,
        poll_delay=0.025,
        handle_signals=True,
        log_results=False,
    ).run()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--max-jobs", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.001)
    args = parser.parse_args()
    _state["delay"] = args.delay
    run_worker(hop, JOB, args.redis, args.max_jobs, on_startup, on_shutdown)


if __name__ == "__main__":
    main()
