"""Run a product process with bench-only monkeypatches: "what if" measurements that show
what a suggested fix would buy, without changing product code.

``python -m bench.patched --patch-no-pre-ping -- api --port P`` runs ``google-video api``
with ``pool_pre_ping=False`` on the PostgreSQL engine (SQLAlchemy's asyncpg pre-ping is
BEGIN + ``;`` + ROLLBACK: three round trips on every pool checkout).
``--patch-drift`` instruments ARQ to record how late each poll job starts (bench.drift).
"""

from __future__ import annotations

import sys
from typing import Any


def _no_pre_ping() -> None:
    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

    import core.db

    original = core.db.make_engine

    def make_engine(url: str, *args: Any, **kwargs: Any) -> AsyncEngine:
        if url.startswith("sqlite"):
            return original(url, *args, **kwargs)
        pool_size = int(kwargs.get("pool_size", 10))
        return create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=False,
            pool_recycle=1800,
        )

    # Before service.app / worker.lifecycle import it by name (cli.main imports lazily).
    core.db.make_engine = make_engine


def _drift() -> None:
    """Record, for every poll job, how late it started: ARQ's ``run_job`` gets the job's
    queue score (its scheduled time, ms); lateness = now - score. Written as JSON
    ``[[start_ms, late_ms], ...]`` to $BENCH_DRIFT_OUT about once a second."""
    import json
    import os
    import time
    from pathlib import Path

    from arq.utils import timestamp_ms
    from arq.worker import Worker

    out = Path(os.environ["BENCH_DRIFT_OUT"])
    samples: list[tuple[int, int]] = []
    last = [time.monotonic()]
    original = Worker.run_job

    async def run_job(self: Worker, job_id: str, score: int) -> None:
        if job_id.startswith("poll:"):
            now = timestamp_ms()
            samples.append((now, now - score))
            if time.monotonic() - last[0] > 1.0:
                last[0] = time.monotonic()
                tmp = out.with_suffix(".tmp")
                tmp.write_text(json.dumps(samples))
                tmp.replace(out)
        await original(self, job_id, score)

    Worker.run_job = run_job  # type: ignore[method-assign]


PATCHES = {"--patch-no-pre-ping": _no_pre_ping, "--patch-drift": _drift}


def main() -> int:
    args = sys.argv[1:]
    while args and args[0].startswith("--patch-"):
        PATCHES[args.pop(0)]()
    if args and args[0] == "--":
        args = args[1:]
    from cli.main import main as cli

    return cli(args)


if __name__ == "__main__":
    sys.exit(main())
