"""Shared benchmark plumbing: private PostgreSQL + Redis, child processes, CPU accounting.

Everything listens on 127.0.0.1 only and every child is bounded in time: started here as
a ``cli.supervise.Child``, stopped here (and SIGKILLed with its process group on the way
out).
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from cli.localservices import PostgresServer, RedisServer
from cli.supervise import HOST, Child, free_port, port_open

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ADMIN_KEY = "gv_bench_admin_key_0123456789abcdef"
# Runtime-config limits a benchmark's one client would hit (README, "Limits").
UNLIMITED = {"client_requests_per_minute": 1_000_000, "user_creates_per_minute": 1_000_000}
SIM_KEY = "sim-bench-key"


def sim_command(port: int) -> list[str]:
    """The gateway simulator on 127.0.0.1:``port``, answering to SIM_KEY."""
    return [
        PY,
        "-m",
        "simulator.main",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api-key",
        SIM_KEY,
    ]


def start_simulator(
    infra: Infra, time_scale: float = 1.0, seed: int | None = None
) -> tuple[Child, str]:
    """The simulator (every duration times ``time_scale``; its random draws seeded with
    ``seed`` when given), and its base URL."""
    port = free_port()
    env = {**infra.env(), "GOOGLE_VIDEO_SIM_TIME_SCALE": repr(time_scale)}
    if seed is not None:
        env["GOOGLE_VIDEO_SIM_SEED"] = str(seed)
    child = start_child("simulator", sim_command(port), env, infra.log_dir, port=port)
    return child, f"http://127.0.0.1:{port}"


def start_child(
    name: str,
    command: Sequence[str],
    env: Mapping[str, str],
    log_dir: Path,
    *,
    port: int | None = None,
    ready_timeout: float = 30.0,
) -> Child:
    """``command`` run from the repository root, its output in ``log_dir/name.log``; with
    ``port``, returns once the child listens there (raises, child killed, if it does not
    within ``ready_timeout`` seconds)."""
    child = Child(name, command, env=env, cwd=ROOT, output=log_dir / f"{name}.log")
    ready = functools.partial(port_open, HOST, port) if port is not None else None
    return child.start(ready, timeout=ready_timeout)


def tree(pid: int | None) -> list[psutil.Process]:
    """The process ``pid`` and all its descendants ([] if it is gone)."""
    if pid is None:
        return []
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def processes(child: Child) -> Callable[[], list[psutil.Process]]:
    """A CpuMeter group: ``child`` and its descendants, enumerated at each reading."""
    return lambda: tree(child.pid)


def client_key(infra: Infra) -> str:
    """A new client-role API key for tenant ``bench``, made with the real CLI."""
    out = subprocess.run(
        [PY, "-m", "cli.main", "keys", "create", "--name", "bench", "--client", "bench"],
        env=infra.env(),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return next(
        line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("key:")
    )


def seed_accounts_sql(users: int, balance: int) -> str:
    """Accounts ``bench``/``u0`` … ``u{users-1}`` with ``balance`` credits each."""
    users, balance = int(users), int(balance)
    return (
        'INSERT INTO accounts (client_id, "user", balance, held, updated_at)'  # noqa: S608
        f" SELECT 'bench', 'u' || g, {balance}, 0, now() FROM generate_series(0, {users - 1}) g"
    )


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Infra:
    """A private PostgreSQL 15 cluster and redis-server in a fresh /tmp directory."""

    base: Path = field(init=False)
    psql_calls: int = 0
    pg: PostgresServer = field(init=False)
    redis: RedisServer = field(init=False)

    def __enter__(self) -> Infra:
        # The cluster runs as `postgres` when we are root: the dir must be traversable.
        self.base = Path(tempfile.mkdtemp(prefix="gv-bench-"))
        self.base.chmod(0o755)
        self.pg = PostgresServer(self.base)
        self.redis = RedisServer(self.base / "redis")
        try:
            self.pg.start()
            self.redis.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.redis.stop()
        with contextlib.suppress(Exception):
            self.pg.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    @property
    def log_dir(self) -> Path:
        path = self.base / "logs"
        path.mkdir(exist_ok=True)
        return path

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment of a product process (API or worker) on these servers."""
        return {
            **os.environ,
            "GOOGLE_VIDEO_DATABASE_URL": self.pg.url,
            "GOOGLE_VIDEO_REDIS_URL": self.redis.url,
            "GOOGLE_VIDEO_DATA_DIR": str(self.base / "data"),
            "GOOGLE_VIDEO_ADMIN_KEY": ADMIN_KEY,
            # As deployed (deploy/k8s): JSON logs at INFO, written to a file here.
            "GOOGLE_VIDEO_LOG_FORMAT": "json",
            "GOOGLE_VIDEO_LOG_LEVEL": "INFO",
            **(extra or {}),
        }

    def migrate(self) -> None:
        subprocess.run(
            [PY, "-m", "cli.main", "migrate"],
            cwd=ROOT,
            env=self.env(),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def psql(self, *statements: str) -> str:
        """Run statements (each its own ``-c``: own transaction) and return the output."""
        self.psql_calls += 1
        command = ["psql", "-h", "127.0.0.1", "-p", str(self.pg.port), "-U", "postgres"]
        command += ["-d", "google_video", "-qAt", "-v", "ON_ERROR_STOP=1"]
        for sql in statements:
            command += ["-c", sql]
        out = subprocess.run(command, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"psql failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def sessions(self) -> int:
        """PostgreSQL sessions opened so far (pg_stat_database.sessions, this one included)."""
        return int(
            self.psql("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        )

    def pg_processes(self) -> list[psutil.Process]:
        """The postmaster and all its children (backends, walwriter, …)."""
        return tree(self.pg.pid)

    def redis_processes(self) -> list[psutil.Process]:
        pid = self.redis.pid
        return [psutil.Process(pid)] if pid else []


def cpu_seconds(processes: Sequence[psutil.Process]) -> float:
    total = 0.0
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


class CpuMeter:
    """CPU seconds spent by named groups of processes between ``start`` and ``stop``.

    Groups are re-enumerated at each reading: a process born in between counts in full;
    one that exited in between is lost (the pools here keep their connections open).
    """

    def __init__(
        self,
        groups: Mapping[str, Callable[[], Sequence[psutil.Process]]],
        infra: Infra | None = None,
    ) -> None:
        self.groups = dict(groups)
        self.infra = infra
        self._start: dict[str, dict[int, float]] = {}
        self._sessions = (0, 0)
        # PostgreSQL connections opened by the processes under test during the window
        # (psql probes subtracted); None without ``infra``.
        self.new_sessions: int | None = None

    @staticmethod
    def _read(procs: Sequence[psutil.Process]) -> dict[int, float]:
        out: dict[int, float] = {}
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                times = proc.cpu_times()
                out[proc.pid] = times.user + times.system
        return out

    def start(self) -> None:
        if self.infra is not None:
            self._sessions = (self.infra.sessions(), self.infra.psql_calls)
        self._start = {name: self._read(get()) for name, get in self.groups.items()}
        self._machine = machine_busy()

    def stop(self) -> dict[str, float]:
        """CPU seconds by group, plus ``machine``: busy CPU seconds of the whole machine
        (all cores, every process: other users of the machine show up as the excess)."""
        out: dict[str, float] = {}
        for name, get in self.groups.items():
            before = self._start.get(name, {})
            now = self._read(get())
            out[name] = sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in now.items())
        out["machine"] = machine_busy() - self._machine
        if self.infra is not None:
            sessions_before, calls = self._sessions
            sessions_now = self.infra.sessions()
            self.new_sessions = sessions_now - sessions_before - (self.infra.psql_calls - calls)
        return out


def machine_busy() -> float:
    t = psutil.cpu_times()
    steal: float = getattr(t, "steal", 0.0)
    return t.user + t.nice + t.system + t.irq + t.softirq + steal


def machine() -> dict[str, str]:
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or "unknown"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "python": platform.python_version(),
        "kernel": platform.release(),
        "postgres": _version(["/usr/lib/postgresql/15/bin/postgres", "--version"]),
        "redis": _version(["redis-server", "--version"]),
        "wrk": "wrk -t1 (C)" if shutil.which("wrk") else "Python asyncio (wrk not installed)",
    }


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "unknown"


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Abort the whole benchmark (SIGALRM) if a step overruns its budget."""

    def fire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"{what}: over the {seconds:.0f} s budget")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


__all__ = [
    "ADMIN_KEY",
    "PY",
    "ROOT",
    "SIM_KEY",
    "Child",
    "CpuMeter",
    "Infra",
    "cpu_seconds",
    "deadline",
    "free_port",
    "log",
    "machine",
    "processes",
    "start_child",
    "tree",
]
