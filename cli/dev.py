"""``google-video dev``: the embedded default in one command.

A private ``redis-server``, SQLite and local-disk storage under the data dir, the
simulator as the upstream, one worker and the API, as child processes supervised here;
Ctrl-C (or SIGTERM) stops them all.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import httpx

from core.config_store import ConfigStore
from core.db import make_engine
from core.migrate import upgrade
from core.secrets import SecretBox
from schemas.config import RuntimeConfigPatch
from schemas.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_dev(host: str, port: int, data_dir: str, sim_port: int) -> int:
    root = Path(data_dir).resolve()
    (root / "redis").mkdir(parents=True, exist_ok=True)
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        print(
            "redis-server is not installed: run `make deps` (or apt-get install redis-server)",
            file=sys.stderr,
        )
        return 1
    redis_port, sim_port = free_port(), sim_port or free_port()
    sim_key = "sim-" + secrets.token_hex(8)
    env = {
        **os.environ,
        "GOOGLE_VIDEO_DATA_DIR": str(root),
        "GOOGLE_VIDEO_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "GOOGLE_VIDEO_SIM_TIME_SCALE": os.environ.get("GOOGLE_VIDEO_SIM_TIME_SCALE", "0.1"),
        "GOOGLE_VIDEO_PUBLIC_URL": os.environ.get(
            "GOOGLE_VIDEO_PUBLIC_URL", f"http://{host}:{port}"
        ),
    }
    os.environ.update(env)
    settings = Settings()
    asyncio.run(_prepare(settings, f"http://127.0.0.1:{sim_port}", sim_key))

    me = [sys.executable, "-m", "cli.main"]
    children = [
        subprocess.Popen(
            [
                redis_bin,
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(root / "redis"),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [*me, "sim", "--host", "127.0.0.1", "--port", str(sim_port), "--api-key", sim_key],
            env=env,
        ),
        subprocess.Popen([*me, "worker"], env=env),
        subprocess.Popen([*me, "api", "--host", host, "--port", str(port)], env=env),
    ]
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        if _wait_ready(f"http://{host}:{port}/healthz", children, deadline=time.monotonic() + 30):
            print(f"google-video dev: API on http://{host}:{port}, data in {root}", flush=True)
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.2)
    finally:
        _terminate(children)
    return 0


async def _prepare(settings: Settings, sim_url: str, sim_key: str) -> None:
    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
        store = ConfigStore(engine, SecretBox(settings.secret_key))
        await store.seed(settings)
        await store.update(
            RuntimeConfigPatch(
                upstream_kind="simulator", upstream_base_url=sim_url, upstream_api_key=sim_key
            )
        )
    finally:
        await engine.dispose()


def _wait_ready(url: str, children: list[subprocess.Popen[bytes]], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if any(c.poll() is not None for c in children):
            return False
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


def _terminate(children: list[subprocess.Popen[bytes]]) -> None:
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in reversed(children):
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
