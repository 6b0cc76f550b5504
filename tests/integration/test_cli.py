"""The `google-video` operator commands, run as real processes on a fresh SQLite file
(forked from a prewarmed parent, ``tests.cli_runner``; one test starts the interpreter as
an operator's shell would)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from core import apikeys
from core.db import make_engine
from core.ids import new_id
from core.invariants import ledger_violations
from core.repo import apikeys as apikeys_repo
from core.repo import config, webhooks
from core.secrets import SecretBox
from schemas.clock import utcnow
from schemas.settings import DEV_SECRET_KEY, Settings
from schemas.status import Role
from service.app import create_app
from tests.cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "gv_cli_admin_key_0123456789abcdef"


class Cli:
    def __init__(self, data_dir: Path, *, interpreter: bool = False) -> None:
        self.interpreter = interpreter  # `python -m cli.main`, not a fork of the zygote
        self.data_dir = data_dir
        self.database_url = f"sqlite+aiosqlite:///{data_dir / 'cli.db'}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_VIDEO_")}
        self.env |= {
            "GOOGLE_VIDEO_ENVIRONMENT": "test",
            "GOOGLE_VIDEO_DATA_DIR": str(data_dir),
            "GOOGLE_VIDEO_DATABASE_URL": self.database_url,
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        if not self.interpreter:
            return run_cli(list(args), env=self.env, cwd=ROOT)
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, (result.stdout, result.stderr)
        return result.stdout

    def create_key(self, *args: str) -> tuple[str, str]:
        out = self.ok("keys", "create", *args)
        key_id = re.search(r"^id:\s+(\S+)$", out, re.MULTILINE)
        key = re.search(r"^key:\s+(\S+)$", out, re.MULTILINE)
        assert key_id and key, out
        return key_id.group(1), key.group(1)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data")


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `migrate` run per module; each test gets a copy of the resulting file."""
    template = Cli(tmp_path_factory.mktemp("cli-template"))
    template.ok("migrate")
    return template.data_dir


@pytest.fixture
def migrated_cli(cli: Cli, migrated_template: Path) -> Cli:
    cli.data_dir.mkdir(parents=True)
    for path in migrated_template.glob("cli.db*"):
        shutil.copyfile(path, cli.data_dir / path.name)
    return cli


@pytest.fixture
async def app(migrated_cli: Cli, redis_url: str) -> AsyncIterator[Starlette]:
    """The API in-process over the same SQLite file the commands write."""
    redis = Redis.from_url(redis_url)
    await redis.flushall()
    await redis.aclose()
    settings = Settings(
        environment="test",
        data_dir=migrated_cli.data_dir,
        database_url=migrated_cli.database_url,
        redis_url=redis_url,
        storage_url=(migrated_cli.data_dir / "storage").as_uri(),
        admin_key=ADMIN_KEY,
        api_key_cache_seconds=0,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def http(app: Starlette, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    )


async def get(app: Starlette, key: str, path: str) -> httpx.Response:
    async with http(app, key) as c:
        return await c.get(path)


async def violations(cli: Cli) -> list[str]:
    engine = make_engine(cli.database_url)
    try:
        async with engine.connect() as conn:
            return await ledger_violations(conn)
    finally:
        await engine.dispose()


def test_migrate_on_fresh_sqlite_exits_zero(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data", interpreter=True)
    result = cli("migrate")
    assert result.returncode == 0, result.stderr
    assert "latest revision" in result.stdout
    assert (cli.data_dir / "cli.db").stat().st_size > 0


def test_migrate_twice_exits_zero(migrated_cli: Cli) -> None:
    assert migrated_cli("migrate").returncode == 0


def test_migrate_on_a_newer_schema_is_a_rollback_and_succeeds(migrated_cli: Cli) -> None:
    with sqlite3.connect(migrated_cli.data_dir / "cli.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999_future'")
    result = migrated_cli("migrate")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "revision 9999_future, newer than this release knows" in result.stderr
    assert "roll back the application only" in result.stderr


def test_keys_create_prints_gv_key_once(migrated_cli: Cli) -> None:
    key_id, key = migrated_cli.create_key("--role", "client", "--name", "acme")
    assert key.startswith("gv_") and len(key) > 30
    assert key_id.startswith("key_")
    assert key not in (migrated_cli.data_dir / "cli.db").read_bytes().decode(errors="replace")


async def test_created_client_key_authenticates_as_its_tenant(
    migrated_cli: Cli, app: Starlette
) -> None:
    _, key = migrated_cli.create_key("--role", "client", "--name", "acme")
    response = await get(app, key, "/v1/credits/acme")
    assert response.status_code == 200, response.text
    assert response.json()["user"] == "acme"
    # A client key is not an admin key.
    assert (await get(app, key, "/v1/admin/config")).status_code == 403


async def test_created_admin_key_reaches_admin_endpoints(migrated_cli: Cli, app: Starlette) -> None:
    _, key = migrated_cli.create_key("--role", "admin", "--name", "ops")
    assert (await get(app, key, "/v1/admin/config")).status_code == 200


async def test_keys_create_with_client_binds_key_to_that_tenant(
    migrated_cli: Cli, app: Starlette
) -> None:
    _, key = migrated_cli.create_key("--name", "billing-bot", "--client", "globex")
    async with http(app, ADMIN_KEY) as admin:
        granted = await admin.post(
            "/v1/credits/globex/grants",
            params={"client": "globex"},
            json={"amount": 7, "reason": "t"},
        )
        assert granted.status_code == 200, granted.text
    assert (await get(app, key, "/v1/credits/globex")).json()["balance"] == 7


async def test_keys_revoke_makes_the_key_401(migrated_cli: Cli, app: Starlette) -> None:
    key_id, key = migrated_cli.create_key("--role", "client", "--name", "acme")
    assert (await get(app, key, "/v1/videos")).status_code == 200
    assert "revoked" in migrated_cli.ok("keys", "revoke", key_id)
    response = await get(app, key, "/v1/videos")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_keys_revoke_of_unknown_or_revoked_key_exits_one(migrated_cli: Cli) -> None:
    key_id, _ = migrated_cli.create_key("--name", "acme")
    migrated_cli.ok("keys", "revoke", key_id)
    again = migrated_cli("keys", "revoke", key_id)
    assert again.returncode == 1 and "no such active key" in again.stderr
    assert migrated_cli("keys", "revoke", "key_nope").returncode == 1


async def test_credits_command_grants_to_user_of_client(migrated_cli: Cli, app: Starlette) -> None:
    out = migrated_cli.ok("credits", "bob", "500", "--client", "acme")
    assert "balance 500, held 0" in out
    _, key = migrated_cli.create_key("--name", "acme")
    body: dict[str, Any] = (await get(app, key, "/v1/credits/bob")).json()
    assert (body["balance"], body["held"]) == (500, 0)
    assert [(e["kind"], e["amount"], e["reason"]) for e in body["entries"]] == [
        ("grant", 500, "cli grant")
    ]
    assert await violations(migrated_cli) == []


async def test_credits_command_negative_amount_adjusts(migrated_cli: Cli) -> None:
    migrated_cli.ok("credits", "bob", "500", "--client", "acme")
    assert "balance 380" in migrated_cli.ok(
        "credits", "bob", "-120", "--client", "acme", "--reason", "refund fix"
    )
    assert await violations(migrated_cli) == []


def test_credits_command_refuses_to_go_below_zero(migrated_cli: Cli) -> None:
    migrated_cli.ok("credits", "bob", "10", "--client", "acme")
    result = migrated_cli("credits", "bob", "-11", "--client", "acme")
    assert result.returncode == 1 and "below zero" in result.stderr


def test_credits_command_requires_client(migrated_cli: Cli) -> None:
    result = migrated_cli("credits", "bob", "10")
    assert result.returncode == 2 and "--client" in result.stderr


def test_unknown_subcommand_exits_two(cli: Cli) -> None:
    result = cli("frobnicate")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_credits_command_follows_the_api_user_rule(migrated_cli: Cli) -> None:
    for user in ["bob\n", "bo b", "..", "x" * 201]:
        result = migrated_cli("credits", user, "10", "--client", "acme")
        assert result.returncode == 2 and "refused" in result.stderr, user
    result = migrated_cli("credits", "bob", str(2**31), "--client", "acme")
    assert result.returncode == 2 and "refused" in result.stderr


# --- keys: list, reserved client ids, the bootstrap key -------------------------------


def test_keys_list_shows_each_key_but_never_its_secret(migrated_cli: Cli) -> None:
    acme_id, acme_key = migrated_cli.create_key("--name", "acme")
    ops_id, ops_key = migrated_cli.create_key("--role", "admin", "--name", "ops")
    migrated_cli.ok("keys", "revoke", acme_id)
    out = migrated_cli.ok("keys", "list")
    header, *rows = out.splitlines()
    assert header.split() == [
        "id",
        "prefix",
        "client",
        "name",
        "role",
        "created",
        "last",
        "used",
        "revoked",
    ]
    acme = next(r for r in rows if r.startswith(acme_id))
    ops = next(r for r in rows if r.startswith(ops_id))
    assert acme.split()[1:5] == [acme_key[:10] + "…", "acme", "acme", "client"]
    assert ops.split()[1:5] == [ops_key[:10] + "…", "admin", "ops", "admin"]
    assert acme.split()[-1] != "-" and ops.split()[-1] == "-"  # revoked at / not revoked
    assert acme_key not in out and ops_key not in out
    assert acme_id not in migrated_cli.ok("keys", "list", "--active")


def test_keys_create_refuses_a_client_named_admin(migrated_cli: Cli) -> None:
    result = migrated_cli("keys", "create", "--name", "admin")
    assert result.returncode == 2 and "'admin' is reserved" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("client_id", "name", "role"),
    [
        ("Admin", "x", Role.CLIENT),
        ("system", "x", Role.CLIENT),
        ("SYSTEM", "x", Role.CLIENT),
        ("acme", "bootstrap", Role.CLIENT),
        ("admin", "bootstrap", Role.ADMIN),
        ("ops", "ops", Role.ADMIN),
    ],
)
async def test_no_key_can_share_a_reserved_scope(
    migrated_cli: Cli, client_id: str, name: str, role: Role
) -> None:
    engine = make_engine(migrated_cli.database_url)
    try:
        async with engine.begin() as conn:
            with pytest.raises(apikeys.ClientRefused):
                await apikeys.create_key(conn, client_id=client_id, name=name, role=role)
    finally:
        await engine.dispose()


async def test_a_client_cannot_take_the_client_id_of_an_earlier_admin_key(
    migrated_cli: Cli,
) -> None:
    """Admin keys made before they all acted for 'admin' keep their own client id."""
    engine = make_engine(migrated_cli.database_url)
    try:
        async with engine.begin() as conn:
            await apikeys_repo.insert_key(
                conn,
                {
                    "id": new_id("key"),
                    "client_id": "ops",
                    "name": "ops",
                    "prefix": "gv_legacy",
                    "key_hash": "0" * 64,
                    "role": "admin",
                    "created_at": utcnow(),
                },
            )
    finally:
        await engine.dispose()
    for args in (("--name", "ops"), ("--name", "x", "--client", "OPS")):
        result = migrated_cli("keys", "create", *args)
        assert result.returncode == 2 and "admin keys" in result.stderr, result.stderr


def test_keys_create_joins_an_existing_client_only_when_asked(migrated_cli: Cli) -> None:
    migrated_cli.create_key("--name", "acme")
    again = migrated_cli("keys", "create", "--name", "acme")
    assert again.returncode == 2 and "--client acme" in again.stderr
    migrated_cli.create_key("--name", "acme-billing", "--client", "acme")


async def _started(migrated_cli: Cli, redis_url: str, **overrides: Any) -> None:
    """Run one API start-up (what registers GOOGLE_VIDEO_ADMIN_KEY) and stop."""
    settings = Settings(
        environment="test",
        data_dir=migrated_cli.data_dir,
        database_url=migrated_cli.database_url,
        redis_url=redis_url,
        storage_url=(migrated_cli.data_dir / "storage").as_uri(),
        api_key_cache_seconds=0,
        **overrides,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        pass


async def test_a_changed_admin_key_revokes_the_previous_bootstrap_key(
    migrated_cli: Cli, app: Starlette, redis_url: str
) -> None:
    assert (await get(app, ADMIN_KEY, "/v1/admin/config")).status_code == 200
    rotated = "gv_rotated_admin_key_0123456789abcdef"
    await _started(migrated_cli, redis_url, admin_key=rotated)
    assert (await get(app, ADMIN_KEY, "/v1/admin/config")).status_code == 401
    assert (await get(app, rotated, "/v1/admin/config")).status_code == 200
    bootstrap = [r for r in migrated_cli.ok("keys", "list").splitlines() if " bootstrap " in r]
    assert len(bootstrap) == 2 and sum(r.rstrip().endswith(" -") for r in bootstrap) == 1
    await _started(migrated_cli, redis_url, admin_key=rotated)  # a restart revokes nothing
    # A replica still on the old value (a rolling update, a rolled-back secret) must not
    # lock out the key that replaced it; the old one stays revoked.
    await _started(migrated_cli, redis_url, admin_key=ADMIN_KEY)
    assert (await get(app, rotated, "/v1/admin/config")).status_code == 200
    assert (await get(app, ADMIN_KEY, "/v1/admin/config")).status_code == 401


# --- secrets reencrypt ----------------------------------------------------------------

NEW_SECRET_KEY = "new-secret-key-0123456789abcdefghijkl"


async def _stored_ciphertexts(cli: Cli) -> list[str]:
    engine = make_engine(cli.database_url)
    try:
        async with engine.connect() as conn:
            rows = [
                *await webhooks.ciphertexts(conn, "endpoints"),
                *await webhooks.ciphertexts(conn, "clients"),
            ]
            document = await config.document(conn) or {}
    finally:
        await engine.dispose()
    found = [r.secret for r in rows] + [r.previous_secret for r in rows if r.previous_secret]
    return [*found, document["upstream_api_key"]]


async def _insert_endpoint(cli: Cli, secret: str, previous: str) -> None:
    box, now = SecretBox(DEV_SECRET_KEY), utcnow()
    engine = make_engine(cli.database_url)
    try:
        async with engine.begin() as conn:
            await webhooks.insert_endpoint(
                conn,
                {
                    "id": new_id("whep"),
                    "client_id": "acme",
                    "url": "https://hooks.example/x",
                    "description": "",
                    "enabled_events": [],
                    "secret": box.encrypt(secret),
                    "previous_secret": box.encrypt(previous),
                    "enabled": True,
                    "created_at": now,
                    "updated_at": now,
                },
            )
    finally:
        await engine.dispose()


async def test_secrets_reencrypt_moves_every_stored_secret_under_the_new_key(
    migrated_cli: Cli, app: Starlette
) -> None:
    """Stored under the old (here the dev) key; after the rotation and the command, the
    new key alone opens every value, and a second run has nothing left to do."""
    _, key = migrated_cli.create_key("--name", "acme")
    async with http(app, key) as acme, http(app, ADMIN_KEY) as admin:
        await acme.post("/v1/webhook-secret")
        client_secret = (await acme.post("/v1/webhook-secret")).json()["secret"]
        await admin.put("/v1/admin/config", json={"upstream_api_key": "sk-upstream-0123456789"})
    await _insert_endpoint(migrated_cli, "whsec_endpoint", "whsec_endpoint_before")
    before = await _stored_ciphertexts(migrated_cli)
    assert len(before) == 5

    migrated_cli.env |= {"GOOGLE_VIDEO_SECRET_KEY": NEW_SECRET_KEY}
    unreadable = migrated_cli("secrets", "reencrypt")
    assert unreadable.returncode == 1 and unreadable.stderr.count("unreadable") == 5
    assert await _stored_ciphertexts(migrated_cli) == before  # nothing half-done

    migrated_cli.env |= {"GOOGLE_VIDEO_SECRET_KEY_PREVIOUS": DEV_SECRET_KEY}
    assert "re-encrypted 5, already under the current key 0" in migrated_cli.ok(
        "secrets", "reencrypt"
    )
    box = SecretBox(NEW_SECRET_KEY)
    plain = [box.decrypt(c) for c in await _stored_ciphertexts(migrated_cli)]
    assert client_secret in plain and "sk-upstream-0123456789" in plain
    assert {"whsec_endpoint", "whsec_endpoint_before"} <= set(plain)
    assert "re-encrypted 0, already under the current key 5" in migrated_cli.ok(
        "secrets", "reencrypt"
    )


def test_admin_commands_print_no_alembic_chatter(migrated_cli: Cli) -> None:
    """Alembic announces its plugins and steps at INFO; quiet unless LOG_LEVEL=DEBUG."""
    for args in (("migrate",), ("credits", "alice", "5", "--client", "acme"), ("keys", "list")):
        result = migrated_cli(*args)
        assert result.returncode == 0, result.stderr
        assert "alembic" not in result.stderr + result.stdout, args


def test_migrate_logs_json_lines_and_alembic_only_at_debug(cli: Cli) -> None:
    """Off a terminal every stderr line is one JSON object, Alembic's records included
    (README, "Logs"); at INFO Alembic says nothing."""
    cli.data_dir.mkdir(parents=True)
    cli.env["GOOGLE_VIDEO_LOG_LEVEL"] = "DEBUG"
    debug = cli("migrate")
    assert debug.returncode == 0, debug.stderr
    entries = [json.loads(line) for line in debug.stderr.splitlines()]
    steps = [e for e in entries if e["logger"] == "alembic.runtime.migration"]
    assert any(e["event"].startswith("Running upgrade 0007 -> 0008") for e in steps), entries
    assert {e["level"] for e in steps} == {"info", "debug"}
    cli.env["GOOGLE_VIDEO_LOG_LEVEL"] = "INFO"
    again = cli("migrate")
    assert again.returncode == 0 and "alembic" not in again.stderr, again.stderr
    assert all(json.loads(line) for line in again.stderr.splitlines())
