"""The real ``google-video dev`` process tree, driven end to end by ``python -m cli.demo``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.services import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "gv_demo_test_admin_key_0123456789"
START_TIMEOUT = 60.0
DEMO_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0
DEV = (sys.executable, "-m", "cli.main", "dev")
DEMO = (sys.executable, "-m", "cli.demo")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


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
    with log_path.open("wb") as log:
        dev = subprocess.Popen(
            [*DEV, "--port", str(port), "--data-dir", str(data_dir)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: every child is findable
        )
    pgid = dev.pid
    try:
        wait_until(
            lambda: _healthy(f"http://127.0.0.1:{port}/healthz"),
            time.monotonic() + START_TIMEOUT,
            what="google-video dev",
            proc=dev,
            interval=0.1,
        )
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
        # redis-server, simulator, worker and API are gone with it.
        wait_until(
            lambda: not _group_alive(pgid),
            time.monotonic() + 5,
            what="dev's children to exit",
        )
    finally:
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
        dev.wait()
