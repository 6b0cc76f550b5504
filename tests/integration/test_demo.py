"""The real ``google-video dev`` process tree, driven end to end by ``python -m cli.demo``."""

from __future__ import annotations

import functools
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis

from cli.supervise import Child, free_port, http_ok, wait_until

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "gv_demo_test_admin_key_0123456789"
START_TIMEOUT = 60.0
DEMO_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0
DEV = (sys.executable, "-m", "cli.main", "dev")
DEMO = (sys.executable, "-m", "cli.demo")


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@pytest.mark.slow
def test_demo_against_dev(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    log_path = tmp_path / "dev.log"
    # Hermetic: no GOOGLE_VIDEO_* from the caller's shell (database, redis, storage...).
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_VIDEO_")}
    env |= {
        "GOOGLE_VIDEO_SIM_TIME_SCALE": "0.01",
        "GOOGLE_VIDEO_ADMIN_KEY": ADMIN_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    dev = Child(
        "google-video dev",
        [*DEV, "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        cwd=ROOT,
        output=log_path,
    )
    healthy = functools.partial(http_ok, f"http://127.0.0.1:{port}/healthz")
    with dev.start(healthy, timeout=START_TIMEOUT, interval=0.1):
        assert dev.pid is not None
        children = psutil.Process(dev.pid).children(recursive=True)
        names = sorted(child.name() for child in children)
        assert len(children) >= 4, names  # redis-server, simulator, worker, API
        _assert_private(data_dir, children)
        demo = subprocess.run(
            [
                *DEMO,
                *("--base-url", f"http://127.0.0.1:{port}", "--admin-key", ADMIN_KEY),
                *("--data-dir", str(data_dir), "--timeout", str(DEMO_TIMEOUT)),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=DEMO_TIMEOUT + 30,
        )
        report = f"demo stdout:\n{demo.stdout}\ndemo stderr:\n{demo.stderr}\ndev log:\n"
        assert demo.returncode == 0, report + _tail(log_path)
        for name in ("text", "image"):
            mp4 = data_dir / "demo" / f"{name}.mp4"
            assert mp4.is_file(), report
            assert mp4.read_bytes()[4:8] == b"ftyp", report
            assert str(mp4.resolve()) in demo.stdout

        dev.send_signal(signal.SIGTERM)
        try:
            code = dev.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"dev did not exit within {STOP_TIMEOUT} s of SIGTERM\n{_tail(log_path)}")
        assert code == 0, _tail(log_path)
        # Read by people (make run keeps it as dev.log): console text, not JSON lines.
        logged = log_path.read_text(errors="replace").splitlines()
        assert logged and not any(line.startswith("{") for line in logged), _tail(log_path)
        # redis-server, simulator, worker and API are gone with it (each leads its own
        # process group, so they are checked one by one).
        wait_until(
            lambda: not any(_running(child) for child in children),
            time.monotonic() + 5,
            what="dev's children to exit",
        )


def _assert_private(data_dir: Path, children: list[psutil.Process]) -> None:
    """The data dir and the database are the owner's alone; Redis wants the password
    kept in the owner-only redis.conf, which no process list shows."""
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    database = data_dir / "google-video.db"
    for path in (database, *database.parent.glob("google-video.db-*")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    conf = data_dir / "redis" / "redis.conf"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    settings = dict(line.split(" ", 1) for line in conf.read_text().splitlines())
    password, port = settings["requirepass"], int(settings["port"])
    assert len(password) >= 32
    assert not any(password in " ".join(child.cmdline()) for child in children)
    anonymous = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    with anonymous, pytest.raises(redis.AuthenticationError):
        anonymous.set("arq:job:x", b"payload")
    with redis.Redis(host="127.0.0.1", port=port, password=password) as owner:
        assert owner.ping()


def test_make_run_refuses_a_taken_port(tmp_path: Path) -> None:
    """``make run`` on a port another server holds must fail, not demo against that server."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            ["bash", "deploy/run-demo.sh", "127.0.0.1", str(port), str(tmp_path / "d"), "k"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "is taken" in result.stderr
    assert not (tmp_path / "d").exists()  # nothing was started


DEV = [sys.executable, "-m", "cli.main", "dev"]


def test_dev_refuses_a_taken_port(tmp_path: Path) -> None:
    """``google-video dev`` (``make dev``) likewise: it announced itself on a port another
    server held, whose /healthz answered its readiness check (a tester)."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*DEV, "--port", str(port), "--data-dir", str(tmp_path / "d")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "API on" not in result.stdout + result.stderr
    assert not (tmp_path / "d").exists()  # nothing was started
