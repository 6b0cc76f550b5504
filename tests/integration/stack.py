"""Real processes for end-to-end tests: the simulator and ARQ workers, as subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.services import free_port, wait_for_port

SIM_KEY = "sim-test-key"
FAST_PACING = {
    "GOOGLE_VIDEO_POLL_FIRST_DELAY": "0.2",
    "GOOGLE_VIDEO_POLL_MIN_INTERVAL": "0.1",
    "GOOGLE_VIDEO_POLL_MAX_INTERVAL": "0.5",
    "GOOGLE_VIDEO_RETRY_BASE_SECONDS": "0.1",
    "GOOGLE_VIDEO_RECONCILE_INTERVAL_SECONDS": "1",
    "GOOGLE_VIDEO_RECONCILE_GRACE_SECONDS": "3",
    "GOOGLE_VIDEO_SUBMIT_MAX_TRIES": "4",
    "GOOGLE_VIDEO_DOWNLOAD_MAX_TRIES": "3",
    "GOOGLE_VIDEO_UPSTREAM_TIMEOUT_SECONDS": "2",
    "GOOGLE_VIDEO_WEBHOOK_RETRY_SCHEDULE": "0.3,0.3,0.3",
    "GOOGLE_VIDEO_WEBHOOK_ALLOW_PRIVATE": "true",
    "GOOGLE_VIDEO_WEBHOOK_TIMEOUT_SECONDS": "3",
}


@dataclass
class Stack:
    env: dict[str, str]
    sim_url: str
    log_dir: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"worker-{len(self.workers)}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(proc)
        return proc

    def stop_workers(self, sig: signal.Signals = signal.SIGTERM) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(sig)
        for proc in self.workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
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
        "GOOGLE_VIDEO_SIM_SUBMIT_TIMEOUT_DELAY": "6",
        **(extra or {}),
    }
    log = (log_dir / "simulator.log").open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator.main",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--api-key",
            SIM_KEY,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port("127.0.0.1", port, time.monotonic() + 20)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
