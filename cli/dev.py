"""``google-video dev``: the embedded default in one command.

A private ``redis-server``, SQLite and local-disk storage under the data dir, the
simulator as the upstream, one worker and the API, as child processes supervised here;
Ctrl-C (or SIGTERM) stops them all.

The data dir is owner-only (0700), the SQLite file 0600, and Redis requires a password
made for each run, kept in ``DATA_DIR/redis/redis.conf`` (0600) and given to the children
in ``GOOGLE_VIDEO_REDIS_URL``: other local users can neither read the database nor write
jobs into the queue.
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

from cli.supervise import Child, ChildExited, free_port, http_ok, wait_until
from core.config_store import ConfigStore
from core.db import make_engine
from core.migrate import upgrade
from core.private_files import private_dir, private_file
from core.secrets import SecretBox
from schemas.config import ProviderAccessPatch, RuntimeConfigPatch
from schemas.settings import Settings


def run_dev(host: str, port: int, data_dir: str, sim_port: int) -> int:
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    # Before anything is spawned, so an early Ctrl-C still reaches the cleanup below.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # Another process on the port would answer the readiness check for us: say so now.
    try:
        socket.create_server((host, port)).close()
    except OSError as exc:
        print(f"google-video dev: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    root = private_dir(Path(data_dir).resolve())
    private_dir(root / "redis")
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        print(
            "redis-server is missing: run `make deps` (apt-get install redis-server)",
            file=sys.stderr,
        )
        return 1
    redis_port, sim_port = free_port(), sim_port or free_port()
    sim_key = "sim-" + secrets.token_hex(8)
    redis_password = secrets.token_hex(24)
    redis_conf = _redis_config(root / "redis", redis_port, redis_password)
    env = _environment(root, host, port, f"redis://:{redis_password}@127.0.0.1:{redis_port}/0")
    os.environ.update(env)
    asyncio.run(_prepare(Settings(), f"http://127.0.0.1:{sim_port}", sim_key))

    me = [sys.executable, "-m", "cli.main"]
    redis_command = [redis_bin, str(redis_conf)]
    sim_command = [*me, "sim", "--host", "127.0.0.1", "--port", str(sim_port), "--api-key", sim_key]
    # Started in dependency order, stopped in reverse: the worker drains against a live Redis.
    # Each leads its own process group, so a Ctrl-C at the terminal reaches only this
    # process, which then keeps that order. Redis's stdout is dropped; the others write to
    # this process's output.
    children = [
        Child("redis", redis_command, env=env, output=subprocess.DEVNULL),
        Child("simulator", sim_command, env=env),
        Child("worker", [*me, "worker"], env=env),
        Child("api", [*me, "api", "--host", host, "--port", str(port)], env=env),
    ]
    try:
        for child in children:
            if stopping:
                return 0
            child.start()
        try:
            wait_until(
                lambda: stopping or http_ok(f"http://127.0.0.1:{port}/healthz"),
                time.monotonic() + 30,
                what="the API",
                watch=children,
                interval=0.1,
            )
        except (ChildExited, TimeoutError):
            _report_exits(children)
            print("google-video dev: the API did not become ready", file=sys.stderr)
            return 1
        if stopping:
            return 0
        print(f"google-video dev: API on http://{host}:{port}, data in {root}", flush=True)
        while not stopping and all(child.alive for child in children):
            time.sleep(0.2)
        if not stopping:
            _report_exits(children)
            return 1
        return 0
    finally:
        for child in reversed(children):  # one at a time, each with its own grace period
            child.stop(signal.SIGTERM, grace=25)


def _redis_config(directory: Path, port: int, password: str) -> Path:
    """A redis.conf (owner-only) for a private, password-protected, non-persistent Redis:
    the password stays out of the process list, and a fresh one is made for each run."""
    conf = private_file(directory / "redis.conf")
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\nprotected-mode yes\nrequirepass {password}\n"
        f'dir "{directory}"\nsave ""\nappendonly no\n'
    )
    return conf


def _environment(root: Path, host: str, port: int, redis_url: str) -> dict[str, str]:
    scale = float(os.environ.get("GOOGLE_VIDEO_SIM_TIME_SCALE", "0.1"))
    public_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    defaults = {
        "GOOGLE_VIDEO_SIM_TIME_SCALE": str(scale),
        "GOOGLE_VIDEO_PUBLIC_URL": f"http://{public_host}:{port}",
        # The simulator runs here too, so it reaches the API where clients do.
        "GOOGLE_VIDEO_CALLBACK_URL": f"http://{public_host}:{port}",
        # Simulated jobs last 30-360 s times the scale: poll on the same compressed clock.
        "GOOGLE_VIDEO_POLL_FIRST_DELAY": str(round(max(0.2, 10 * scale), 2)),
        "GOOGLE_VIDEO_POLL_MIN_INTERVAL": str(round(max(0.1, 2 * scale), 2)),
        "GOOGLE_VIDEO_POLL_MAX_INTERVAL": str(round(max(0.5, 30 * scale), 2)),
        "GOOGLE_VIDEO_RETRY_BASE_SECONDS": str(round(max(0.1, 2 * scale), 2)),
        # A webhook receiver on this machine, over plain http, is the usual dev setup.
        "GOOGLE_VIDEO_EGRESS_ALLOW": "127.0.0.0/8,::1,localhost",
        "GOOGLE_VIDEO_EGRESS_ALLOW_HTTP": "true",
        # Read by people, on the terminal or in make run's dev.log: text, not JSON.
        "GOOGLE_VIDEO_LOG_FORMAT": "console",
    }
    return {
        **defaults,
        **os.environ,
        "GOOGLE_VIDEO_DATA_DIR": str(root),
        "GOOGLE_VIDEO_REDIS_URL": redis_url,
        "GOOGLE_VIDEO_SIM_TIME_SCALE": str(scale),
    }


def _report_exits(children: list[Child]) -> None:
    for child in children:
        if child.proc is not None and not child.alive:
            print(
                f"google-video dev: {child.name} exited with code {child.returncode}",
                file=sys.stderr,
            )


async def _prepare(settings: Settings, sim_url: str, sim_key: str) -> None:
    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
        store = ConfigStore(engine, SecretBox(*settings.secret_keys))
        await store.seed(settings)
        await store.update(
            RuntimeConfigPatch(
                upstream_kind="simulator",
                upstream_base_url=sim_url,
                upstream_api_key=sim_key,
                # The simulator speaks the Gemini API too: the catalogue's gemini models.
                providers={"gemini": ProviderAccessPatch(base_url=sim_url, api_key=sim_key)},
            )
        )
    finally:
        await engine.dispose()
