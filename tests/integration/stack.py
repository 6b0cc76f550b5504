"""Real processes for end-to-end tests: the simulator and ARQ workers, as subprocesses."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cli.supervise import HOST, Child, free_port, port_open, stop_all

SIM_KEY = "sim-test-key"
FAST_PACING = {
    "GOOGLE_VIDEO_POLL_FIRST_DELAY": "0.2",
    "GOOGLE_VIDEO_POLL_MIN_INTERVAL": "0.1",
    "GOOGLE_VIDEO_POLL_MAX_INTERVAL": "0.5",
    # The dense polls' GET budget: fixed polling at this interval (10 s would make every
    # test video wait out the 0.5 s ceiling: durations under 1 s are never learned).
    "GOOGLE_VIDEO_POLL_BUDGET_INTERVAL": "0.2",
    "GOOGLE_VIDEO_RETRY_BASE_SECONDS": "0.1",
    "GOOGLE_VIDEO_RECONCILE_INTERVAL_SECONDS": "1",
    "GOOGLE_VIDEO_RECONCILE_GRACE_SECONDS": "3",
    "GOOGLE_VIDEO_SUBMIT_MAX_TRIES": "4",
    "GOOGLE_VIDEO_DOWNLOAD_MAX_TRIES": "3",
    "GOOGLE_VIDEO_UPSTREAM_TIMEOUT_SECONDS": "2",
    "GOOGLE_VIDEO_WEBHOOK_RETRY_SCHEDULE": "0.3,0.3,0.3",
    # The tests' webhook receivers listen on loopback, over plain http.
    "GOOGLE_VIDEO_EGRESS_ALLOW": "127.0.0.0/8",
    "GOOGLE_VIDEO_EGRESS_ALLOW_HTTP": "true",
    "GOOGLE_VIDEO_WEBHOOK_TIMEOUT_SECONDS": "3",
}


@dataclass
class Stack:
    env: dict[str, str]
    sim_url: str
    log_dir: Path
    workers: list[Child] = field(default_factory=list)

    def start_worker(self, extra: dict[str, str] | None = None) -> Child:
        """One more worker process, with ``extra`` added to its environment."""
        name = f"worker-{len(self.workers)}"
        command = [sys.executable, "-m", "cli.main", "worker"]
        env = {**self.env, **(extra or {})}
        worker = Child(name, command, env=env, output=self.log_dir / f"{name}.log")
        self.workers.append(worker.start())
        return worker

    def stop_workers(self, sig: signal.Signals = signal.SIGTERM) -> None:
        stop_all(self.workers, sig, grace=30)
        self.workers.clear()


def base_env(pg_url: str, redis_url: str, storage: dict[str, str], sim_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "GOOGLE_VIDEO_ENVIRONMENT": "test",
        "GOOGLE_VIDEO_DATABASE_URL": pg_url,
        "GOOGLE_VIDEO_REDIS_URL": redis_url,
        "GOOGLE_VIDEO_UPSTREAM_KIND": "simulator",
        "GOOGLE_VIDEO_UPSTREAM_BASE_URL": sim_url,
        "GOOGLE_VIDEO_UPSTREAM_API_KEY": SIM_KEY,
        "GOOGLE_VIDEO_LOG_LEVEL": "INFO",
        **FAST_PACING,
        **storage,
    }


@contextmanager
def simulator(
    log_dir: Path, *, time_scale: float = 0.01, extra: dict[str, str] | None = None
) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "GOOGLE_VIDEO_SIM_TIME_SCALE": str(time_scale),
        # The durability and memory tests store files of 150-200 MiB on purpose.
        "GOOGLE_VIDEO_SIM_MAX_VIDEO_BYTES": str(256 * 1024 * 1024),
        "GOOGLE_VIDEO_SIM_SUBMIT_TIMEOUT_DELAY": "6",
        **(extra or {}),
    }
    command = [sys.executable, "-m", "simulator.main", "--host", HOST, "--port", str(port)]
    sim = Child(
        "simulator", [*command, "--api-key", SIM_KEY], env=env, output=log_dir / "simulator.log"
    )
    with sim.start(functools.partial(port_open, HOST, port), timeout=20):
        yield f"http://{HOST}:{port}"
