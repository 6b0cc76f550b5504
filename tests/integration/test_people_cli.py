"""The people commands (`google-video videos|keys|credits|config`) as real processes
(forked from a prewarmed parent, ``tests.cli_runner``; one test runs the installed
``google-video`` script) against a running stack: the API process, a worker and the
simulator over PostgreSQL, Redis and moto S3 (one stack for the module). Every failure
must be one line on stderr with a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import make_engine
from tests.cli_runner import run_cli
from tests.integration.conftest import TABLES
from tests.integration.e2e.conftest import running_stack
from tests.integration.images import png_bytes
from tests.integration.test_openai_sdk import Api, start_api

# One stack for the whole module, on one xdist worker, handed out early: together the
# tests take most of a minute.
pytestmark = [pytest.mark.xdist_group("people_cli"), pytest.mark.slow]

ADMIN_KEY = "gv_people_cli_admin_key_0123456789abcdef"
CLI = Path(sys.executable).with_name("google-video")


class Cli:
    """``google-video`` run as a person would, with only the variables given here."""

    def __init__(self, home: Path, *, script: bool = False, **env: str) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_VIDEO_")}
        self.env = {**base, **env}
        self.home = home  # the working directory: where downloads land by default
        self.script = script  # the installed entry point, not a fork of the zygote

    def __call__(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        if not self.script:
            return run_cli(list(args), env=self.env, cwd=cwd or self.home, timeout=90)
        return subprocess.run(
            [str(CLI), *args],
            env=self.env,
            cwd=cwd or self.home,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    def ok(self, *args: str, cwd: Path | None = None) -> str:
        result = self(*args, cwd=cwd)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def fails(self, *args: str, code: int = 1) -> str:
        """The one line a failing command printed on stderr."""
        result = self(*args)
        assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr, result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("google-video"), result.stderr
        return lines[0]


async def _emptied(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def api(
    migrated: AsyncEngine,
    pg_url: str,
    redis_url: str,
    s3_endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Api]:
    # A database as a new installation has it: the test before may have left a runtime
    # config naming its own, finished simulator, which this API would read (not seed).
    asyncio.run(_emptied(pg_url))
    log_dir = tmp_path_factory.mktemp("people-cli")
    with running_stack(pg_url, redis_url, s3_endpoint, log_dir) as stack:
        # The production key memo (not 0): a revocation must still be refused at once.
        env = {**stack.env, "GOOGLE_VIDEO_ADMIN_KEY": ADMIN_KEY}
        env["GOOGLE_VIDEO_API_KEY_CACHE_SECONDS"] = "30"
        yield from start_api(env, log_dir / "api.log")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("people-cli-home")


@pytest.fixture(scope="module")
def cli(api: Api, home: Path) -> Cli:
    admin = Cli(home, GOOGLE_VIDEO_URL=api.base_url, GOOGLE_VIDEO_API_KEY=ADMIN_KEY)
    admin.ok("config", "set", "max_concurrent_tasks_per_user=20")
    admin.ok("credits", "grant", "admin", "100000")
    return admin


@pytest.fixture(scope="module")
def fox(cli: Cli, home: Path) -> subprocess.CompletedProcess[str]:
    """One video made with ``--wait``: created, followed, saved to ``home/fox.mp4``."""
    return cli(
        "videos", "create", "--prompt", "a fox in the snow", "--model", "veo3-fast",
        "--wait", "--output", "fox.mp4",
    )  # fmt: skip


def test_create_wait_downloads_the_mp4(
    cli: Cli, fox: subprocess.CompletedProcess[str], home: Path
) -> None:
    assert fox.returncode == 0, fox.stderr
    assert "completed 100%" in fox.stderr  # the status lines off a terminal
    assert "saved fox.mp4" in fox.stdout
    path = home / "fox.mp4"
    assert not (home / "fox.mp4.part").exists()
    video = cli.json("videos", "get", fox.stdout.split()[0])
    data = path.read_bytes()
    assert len(data) == video["video_bytes"]
    assert hashlib.sha256(data).hexdigest() == video["video_sha256"]
    with av.open(str(path)) as container:
        assert container.format.name.startswith("mov,mp4")
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (video["width"], video["height"])
        assert sum(1 for _ in container.decode(stream)) > 0


def test_list_get_download_cancel_delete(
    cli: Cli, fox: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    (tmp_path / "red.png").write_bytes(png_bytes(128, 72))
    # A local file goes through POST /v1/uploads; 200 s upstream: still running below
    # (the CLI calls in between take 20 s and more on a busy machine).
    running = cli.json(
        "videos", "create", "--prompt", "red [sim:duration=20000]",
        "--model", "veo3-pro-frames", "--image", str(tmp_path / "red.png"),
    )  # fmt: skip
    assert running["task_type"] == "image_to_video" and len(running["images"]) == 1
    done = cli.json("videos", "get", fox.stdout.split()[0])

    listed = cli.json("videos", "list", "--limit", "100")
    assert {running["id"], done["id"]} <= {v["id"] for v in listed["data"]}
    table = cli.ok("videos", "list", "--status", "completed")
    assert done["id"] in table and running["id"] not in table
    assert table.splitlines()[0].split()[:3] == ["id", "status", "progress"]
    shown = dict(line.split(None, 1) for line in cli.ok("videos", "get", done["id"]).splitlines())
    assert (shown["id"], shown["status"], shown["progress"]) == (done["id"], "completed", "100")

    saved = cli.json("videos", "download", done["id"], "-o", str(tmp_path / "again.mp4"))
    assert (
        hashlib.sha256((tmp_path / "again.mp4").read_bytes()).hexdigest() == (done["video_sha256"])
    )
    assert saved["path"] == str(tmp_path / "again.mp4")
    cli.ok("videos", "download", done["id"], "--variant", "thumbnail", cwd=tmp_path)
    assert (tmp_path / f"{done['id']}.webp").read_bytes()[8:12] == b"WEBP"

    assert "cancelled" in cli.ok("videos", "cancel", running["id"])
    cancelled = cli.json("videos", "get", running["id"])
    assert cancelled["cancelled"] is True
    line = cli.fails("videos", "cancel", done["id"])
    assert "already finished" in line and "video_already_finished" in line
    line = cli.fails("videos", "download", running["id"])
    assert "not completed" in line

    assert cli.json("videos", "delete", done["id"])["deleted"] is True
    assert "not_found" in cli.fails("videos", "get", done["id"])


def test_the_same_idempotency_key_is_one_video_and_one_charge(cli: Cli) -> None:
    before = cli.json("credits", "show", "admin")
    args = ("videos", "create", "--prompt", "once", "--model", "veo3-fast")
    first = cli.json(*args, "--idempotency-key", "people-cli-once")
    second = cli.json(*args, "--idempotency-key", "people-cli-once")
    assert first["id"] == second["id"]
    after = cli.json("credits", "show", "admin")
    assert before["balance"] - after["balance"] == first["price"]


def test_failures_are_one_line(cli: Cli, api: Api, tmp_path: Path) -> None:
    key = "gv_wrong_0123456"
    wrong = Cli(tmp_path, script=True, GOOGLE_VIDEO_URL=api.base_url, GOOGLE_VIDEO_API_KEY=key)
    assert "API key was refused" in wrong.fails("videos", "list")
    keyless = Cli(tmp_path, GOOGLE_VIDEO_URL=api.base_url)
    assert "no API key" in keyless.fails("videos", "list", code=2)

    nowhere = Cli(tmp_path, GOOGLE_VIDEO_URL="http://127.0.0.1:9", GOOGLE_VIDEO_API_KEY=ADMIN_KEY)
    line = nowhere.fails("videos", "get", "video_0123")
    assert "cannot reach http://127.0.0.1:9: is the service running?" in line

    assert "not_found" in cli.fails("videos", "get", "video_" + "0" * 32)
    assert "not_found" in cli.fails("videos", "get", "not-an-id")
    line = cli.fails("credits", "grant", "bob", "12345678901234567890")
    assert "amount" in line and "validation_error" in line
    assert "no such file" in cli.fails(
        "videos", "create", "--prompt", "x", "--image", "/n.png", code=2
    )
    assert "invalid choice" in cli.fails("videos", "frobnicate", code=2)
    assert "--prompt" in cli.fails("videos", "create", code=2)


def test_unmigrated_database_is_one_line(tmp_path: Path) -> None:
    local = Cli(tmp_path)
    line = local.fails("keys", "list", "--data-dir", str(tmp_path / "empty"))
    assert "database not migrated: run `google-video migrate`" in line
    (tmp_path / "blank.db").touch()
    url = f"sqlite+aiosqlite:///{tmp_path / 'blank.db'}"
    line = local.fails("keys", "create", "--name", "acme", "--database-url", url)
    assert line == "google-video: database not migrated: run `google-video migrate`"
    line = local.fails(
        "credits", "bob", "1" + "0" * 19, "--client", "a", "--database-url", url, code=2
    )
    assert "amount" in line
    both = local.fails("keys", "list", "--url", "http://x", "--data-dir", str(tmp_path), code=2)
    assert "pass one kind" in both


def test_keys_over_http_create_use_revoke(cli: Cli, api: Api, home: Path) -> None:
    created = cli.json("keys", "create", "--name", "people-cli-acme")
    assert created["key"].startswith("gv_") and created["client"] == "people-cli-acme"
    acme = Cli(home, GOOGLE_VIDEO_URL=api.base_url, GOOGLE_VIDEO_API_KEY=created["key"])
    assert acme.json("videos", "list")["data"] == []  # its own tenant sees nothing of admin's
    assert "forbidden" in acme.fails("keys", "list")

    listed = cli.ok("keys", "list")
    assert created["id"] in listed and created["key"] not in listed
    assert f"revoked {created['id']}" in cli.ok("keys", "revoke", created["id"])
    assert "API key was refused" in acme.fails("videos", "list")
    assert "not_found" in cli.fails("keys", "revoke", created["id"])
    assert created["id"] not in cli.ok("keys", "list", "--active")


def test_config_show_set_test(cli: Cli) -> None:
    assert cli.json("config", "show")["max_concurrent_tasks_per_user"] == 20
    shown = cli.ok("config", "show")
    assert "upstream_api_key" in shown and "sim-test-key" not in shown
    report = cli.json("config", "test")
    assert report["ok"] is True and report["result"] == "key_accepted"
    rejected = cli("config", "test", "--upstream-key", "wrong-key")
    assert rejected.returncode == 1 and "key_rejected" in rejected.stdout
    assert "is not JSON" in cli.fails("config", "set", "task_timeout_seconds=soon", code=2)
    assert "validation_error" in cli.fails("config", "set", "task_timeout_seconds=1")
