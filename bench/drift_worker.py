"""``google-video worker`` with ARQ instrumented to record how late each poll job starts
(for ``bench.drift``): ``python -m bench.drift_worker``.

ARQ's ``Worker.run_job`` gets the job's queue score (its scheduled time, ms); lateness =
now - score. Written as JSON ``[[start_ms, late_ms], ...]`` to $BENCH_DRIFT_OUT about once
a second. The product code is unchanged: the patch is applied in this process only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from arq.utils import timestamp_ms
from arq.worker import Worker


def _record_lateness(out: Path) -> None:
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


def main() -> int:
    _record_lateness(Path(os.environ["BENCH_DRIFT_OUT"]))
    from cli.main import main as cli

    return cli(["worker"])


if __name__ == "__main__":
    sys.exit(main())
