"""The processes of a chaos run: services, simulator, API and workers, and their cleanup.

Everything listens on 127.0.0.1 and lives in one run directory (mode 0755 under /tmp so
the ``postgres`` user can traverse it when we run as root). Every child is a
``cli.supervise.Child``: its own process group, so stopping it reaps whatever it spawned,
and (when started from the main thread) it dies with the harness if the harness is
SIGKILLed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from cli.supervise import Child, free_port, http_ok, port_open, stop_all
from tests.integration.stack import SIM_KEY, base_env
from tests.services import HOST, PostgresServer, RedisServer

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "gv_chaos_admin_key_0123456789abcdef"
STOP_TIMEOUT = 10.0


class Cluster:
    """PostgreSQL, Redis, the simulator, the API and N workers for one chaos run."""

    def __init__(self, run_dir: Path, *, seed: int) -> None:
        self.run_dir = run_dir
        self.seed = seed
        self.pg = PostgresServer(run_dir)
        self.redis = RedisServer(run_dir / "redis")
        self.sim: Child | None = None
        self.api: Child | None = None
        self.api_port = 0
        self.sim_url = ""
        self.env: dict[str, str] = {}
        self.groups: set[int] = set()  # process group ids (each child leads its own)
        self.workers: list[Child] = []  # current process per slot
        self.all_workers: list[Child] = []  # every worker process ever started
        self._serial = 0

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    # -- start-up --------------------------------------------------------------------

    def start_services(self) -> None:
        # The simulator imports while PostgreSQL initialises and the schema migrates: the
        # API, which reads its config at start-up, is the first that needs all of them.
        ready = self._spawn_simulator()
        self.pg.start()
        self._remember(self.pg.pid)
        self.redis.start()
        self._remember(self.redis.pid)
        storage = self.run_dir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        self.env = {
            **base_env(
                self.pg.url,
                self.redis.url,
                {"GOOGLE_VIDEO_STORAGE_URL": storage.as_uri()},
                self.sim_url,
            ),
            "GOOGLE_VIDEO_ADMIN_KEY": ADMIN_KEY,
            "GOOGLE_VIDEO_DATA_DIR": str(self.run_dir / "data"),
            "GOOGLE_VIDEO_WORKER_DRAIN_SECONDS": "2",
            "PYTHONUNBUFFERED": "1",
        }
        self._migrate()
        assert self.sim is not None
        self.sim.wait_ready(ready, timeout=30)
        self.api_port = free_port()
        self.start_api()

    def _spawn_simulator(self) -> Callable[[], bool]:
        """Start the simulator (its URL set at once); returns its readiness check."""
        port = free_port()
        env = {
            **os.environ,
            # Durations come from [sim:duration=S] directives, in real seconds.
            "GOOGLE_VIDEO_SIM_TIME_SCALE": "1.0",
            "GOOGLE_VIDEO_SIM_SUBMIT_TIMEOUT_DELAY": "6",
            "GOOGLE_VIDEO_SIM_SEED": str(self.seed),
        }
        command = [
            sys.executable,
            "-m",
            "simulator.main",
            "--host",
            HOST,
            "--port",
            str(port),
            "--api-key",
            SIM_KEY,
        ]
        self.sim = self._spawn("simulator", command, env, self.run_dir / "simulator.log")
        self.sim_url = f"http://{HOST}:{port}"
        return functools.partial(port_open, HOST, port)

    def _migrate(self) -> None:
        log = self.run_dir / "migrate.log"
        with log.open("ab") as out:
            result = subprocess.run(
                [sys.executable, "-m", "cli.main", "migrate"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=120,
            )
        if result.returncode != 0:
            raise RuntimeError(f"migrate failed (exit {result.returncode}); see {log}")

    def start_api(self, *, wait: bool = True) -> Child:
        command = [sys.executable, "-m", "cli.main", "api", "--host", HOST]
        command += ["--port", str(self.api_port)]
        self.api = self._spawn("api", command, self.env, self.run_dir / "api.log")
        if wait:
            self.wait_api()
        return self.api

    def wait_api(self, timeout: float = 30.0) -> None:
        api = self.api
        assert api is not None
        healthy = functools.partial(http_ok, f"{self.api_url}/healthz")
        api.wait_ready(healthy, timeout=timeout, what="api", interval=0.1)

    def start_worker(self, slot: int | None = None) -> Child:
        """Start a worker in ``slot`` (replacing whatever was there) or in a new slot."""
        self._serial += 1
        name = f"worker-{self._serial:03d}"
        command = [sys.executable, "-m", "cli.main", "worker"]
        worker = self._spawn(name, command, self.env, self.run_dir / "logs" / f"{name}.log")
        self.all_workers.append(worker)
        if slot is None:
            self.workers.append(worker)
        else:
            self.workers[slot] = worker
        return worker

    # -- shutdown --------------------------------------------------------------------

    def cleanup(self) -> None:
        """Stop every process this cluster started; safe to call more than once."""
        # SIGTERM to every live worker's group at once, so they drain in parallel.
        stop_all([w for w in self.all_workers if w.alive], grace=STOP_TIMEOUT, group=True)
        for worker in self.all_workers:
            worker.kill()  # reap anything left (no-op for the dead)
        for child in (self.api, self.sim):
            if child is not None:
                child.stop(grace=STOP_TIMEOUT, group=True)
        with contextlib.suppress(Exception):
            self.redis.stop()
        with contextlib.suppress(Exception):
            self.pg.stop()

    def restart_postgres(self) -> None:
        """Fast shutdown and start again on the same port (blocking: run it in a thread)."""
        self.pg.restart()
        self._remember(self.pg.pid)

    def _spawn(self, name: str, command: list[str], env: dict[str, str], log: Path) -> Child:
        child = Child(name, command, env=env, cwd=ROOT, output=log).start()
        self._remember(child.pid)
        return child

    def _remember(self, pid: int | None) -> None:
        if pid is not None:
            self.groups.add(pid)

    def orphans(self) -> list[str]:
        """Live processes left in any process group this cluster ever started."""
        left = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            # pid (comm) state ppid pgrp …; comm may contain spaces, so split after ')'.
            fields = text[text.rindex(")") + 2 :].split()
            if fields[0] != "Z" and int(fields[2]) in self.groups:
                left.append(f"pid {stat.parent.name} {text[: text.rindex(')') + 1]}")
        return left
