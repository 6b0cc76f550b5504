"""Real PostgreSQL 15, Redis and S3 (moto) servers as private local processes.

For the tests, the chaos harness and the benchmarks (none of it runs in production; it
lives in ``cli`` so that ``bench`` need not import ``tests``). Each server listens on
127.0.0.1 on a free port and is a :class:`cli.supervise.Child`: its own process group
(stopping it reaps what it spawned), an atexit hook, and SIGKILL from the kernel if the
process that started it from its main thread dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import redis

from cli.supervise import HOST, STOP_GRACE, Child, free_port, port_open

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_DATABASE = "google_video"
START_TIMEOUT = 30.0


class ServerProcess:
    """One long-running server in its own process group, with a log file."""

    name = "server"

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port: int | None = None
        self._child: Child | None = None

    # Subclasses build the command and say when the server is ready.
    def _command(self, port: int) -> Sequence[str]:
        raise NotImplementedError

    def _ready(self, port: int) -> bool:
        return port_open(HOST, port)

    def _user(self) -> pwd.struct_passwd | None:
        return None

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.alive

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def start(self) -> None:
        """Start on a free port; later starts (after stop/kill) reuse the same port."""
        if self.running:
            return
        attempts = 3 if self.port is None else 1
        for attempt in range(attempts):
            port = self.port if self.port is not None else free_port()
            try:
                self._launch(port)
            except RuntimeError:
                # Most likely another process took the free port between probe and bind.
                if attempt == attempts - 1:
                    raise
                continue
            self.port = port
            return

    def _launch(self, port: int) -> None:
        child = Child(self.name, self._command(port), output=self.log_path, user=self._user())
        child.start(
            lambda: self._ready(port), timeout=START_TIMEOUT, what=f"{self.name} on port {port}"
        )
        self._child = child

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Ask the server to exit, SIGKILL its group after a grace period, and reap it."""
        if self._child is not None:
            self._child.stop(sig, grace=STOP_GRACE)
            self._child = None

    def kill(self) -> None:
        """SIGKILL the whole process group immediately (a crash, for chaos tests)."""
        if self._child is not None:
            self._child.kill()
            self._child = None

    def restart(self) -> None:
        """Stop gracefully and start again on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _require_port(self) -> int:
        if self.port is None:
            raise RuntimeError(f"{self.name} has not been started")
        return self.port


class PostgresServer(ServerProcess):
    """A throwaway PostgreSQL 15 cluster tuned for speed (no fsync), trust auth.

    Commits survive kill() (a process crash), not a machine crash.

    ``base_dir`` must be traversable by the ``postgres`` user when running as root
    (pytest's tmp dirs are not); the cluster lives in ``base_dir/pg``.
    """

    name = "postgres"

    def __init__(self, base_dir: Path) -> None:
        self.root = Path(base_dir) / "pg"
        self.data_dir = self.root / "data"
        super().__init__(self.root / "postgres.log")
        self._postgres = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@{HOST}:{self._require_port()}/{PG_DATABASE}"

    @property
    def dsn(self) -> str:
        """The URL without the SQLAlchemy driver, for asyncpg/psql."""
        return self.url.replace("+asyncpg", "", 1)

    def start(self) -> None:
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        first = self.port is None
        super().start()
        if first:
            self._createdb()

    def stop(self, sig: signal.Signals = signal.SIGINT) -> None:
        """Fast shutdown (SIGINT): roll back sessions and exit without waiting for clients."""
        super().stop(sig)

    def _command(self, port: int) -> Sequence[str]:
        settings = {
            "listen_addresses": HOST,
            "port": str(port),
            "unix_socket_directories": str(self.data_dir),
            # fsync=off already makes commits cheap (a write(), no flush). synchronous_commit
            # stays on: off would lose the last ~200 ms of commits when kill() simulates a
            # crash, which chaos tests would read as lost data; it measured no faster here.
            "fsync": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        command = [str(PG_BIN / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        return command

    def _ready(self, port: int) -> bool:
        # postmaster.pid's last line turns "ready" once connections are accepted
        # (after crash recovery, unlike the port, which opens earlier).
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready" and port_open(HOST, port)

    def _user(self) -> pwd.struct_passwd | None:
        return self._postgres

    def _initdb(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._postgres is not None:
            self._check_traversable()
            os.chown(self.root, self._postgres.pw_uid, self._postgres.pw_gid)
        command = [
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        if self._postgres is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.decode(errors='replace')}")

    def _check_traversable(self) -> None:
        for parent in self.root.resolve().parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                raise PermissionError(
                    f"{parent} is not traversable by the postgres user; "
                    "use a base_dir under a world-executable path such as /tmp"
                )

    def _createdb(self) -> None:
        port = self._require_port()
        result = subprocess.run(
            [str(PG_BIN / "createdb"), "-h", HOST, "-p", str(port), "-U", "postgres", PG_DATABASE],
            capture_output=True,
            check=False,
        )
        if result.returncode != 0 and b"already exists" not in result.stderr:
            raise RuntimeError(f"createdb failed: {result.stderr.decode(errors='replace')}")


class RedisServer(ServerProcess):
    """A private redis-server without persistence."""

    name = "redis"

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir)
        super().__init__(self.base_dir / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self._require_port()}/0"

    def _command(self, port: int) -> Sequence[str]:
        executable = shutil.which("redis-server")
        if executable is None:
            raise FileNotFoundError("redis-server not found; run deploy/install-deps.sh")
        return [
            executable,
            "--port",
            str(port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.base_dir),
        ]

    def _ready(self, port: int) -> bool:
        try:
            with redis.Redis(host=HOST, port=port, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def flushall(self) -> None:
        with redis.Redis.from_url(self.url) as client:
            client.flushall()


class MotoServer(ServerProcess):
    """moto in server mode: an S3-compatible endpoint (any credentials are accepted)."""

    name = "moto"

    def __init__(self, log_dir: Path | None = None) -> None:
        super().__init__(Path(log_dir) / "moto.log" if log_dir is not None else Path(os.devnull))

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._require_port()}"

    def _command(self, port: int) -> Sequence[str]:
        return [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]

    def reset(self) -> None:
        """Drop every bucket and object (moto's reset API)."""
        httpx.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()
