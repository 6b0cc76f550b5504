"""Operator subcommands that talk to the database directly: migrate, keys, credits,
secrets. They print what the HTTP API would answer (``core.presenter``), and say in one
line what is wrong with the database: unreachable, not migrated, migrated by a newer
release."""

from __future__ import annotations

import argparse
import sys

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cli import views
from cli.failures import FAILED, USAGE, CliError
from cli.output import Output
from core import apikeys
from core.db import make_engine, shown_url, sqlite_file
from core.migrate import ahead, is_current, upgrade
from core.presenter import account_of, api_key_of
from core.reencrypt import reencrypt_all
from core.repo import credits
from core.secrets import SecretBox
from schemas.api import Grant, KeyCreate
from schemas.fields import INT32_MAX, ClientName, UserName
from schemas.settings import Settings
from schemas.status import Role

# The API's rules for the names and amounts an operator types (one user-name rule).
_USER: TypeAdapter[str] = TypeAdapter(UserName)
_CLIENT: TypeAdapter[str] = TypeAdapter(ClientName)
MAX_PAGE = 100
NOT_MIGRATED = "database not migrated: run `google-video migrate`"


def _invalid(args: argparse.Namespace) -> str | None:
    """Why the arguments cannot be stored, or None."""
    try:
        if args.command == "credits":
            _USER.validate_python(args.user)
            if args.client is None:
                return "--client CLIENT is required against the database (the user's tenant)"
            _CLIENT.validate_python(args.client)
            if args.action == "show":
                if not 1 <= args.limit <= MAX_PAGE:
                    return f"--limit: 1 to {MAX_PAGE}"
                if args.before is not None and not 0 < args.before <= INT32_MAX:
                    return "--before: an entry id"
            if args.action == "grant":
                if args.amount == 0:
                    return "amount: must not be zero"
                Grant(amount=args.amount, reason=args.reason)
        if args.command == "keys" and args.action == "create":
            KeyCreate(name=args.name, role=args.role, client=args.client)
    except ValidationError as exc:
        return "; ".join(_message(e) for e in exc.errors(include_url=False))
    return None


def _message(error: object) -> str:
    assert isinstance(error, dict)
    where = ".".join(str(part) for part in error.get("loc", ()))
    return f"{where}: {error['msg']}" if where else str(error["msg"])


async def dispatch(
    settings: Settings, args: argparse.Namespace, out: Output, *, by_default: bool = False
) -> int:
    """Run one database command. ``by_default``: no flag or variable chose the database
    (``cli.target``), so a missing one also points at ``GOOGLE_VIDEO_URL``."""
    if (problem := _invalid(args)) is not None:
        raise CliError(f"refused: {problem}", USAGE)
    url = settings.database_url
    try:
        database_file = sqlite_file(url)
    except ArgumentError:
        raise CliError(
            "not a database URL (check --database-url or GOOGLE_VIDEO_DATABASE_URL)", USAGE
        ) from None
    if args.command != "migrate" and database_file is not None and not database_file.exists():
        hint = " (or set GOOGLE_VIDEO_URL / --url to use the HTTP API)" if by_default else ""
        raise CliError(f"{NOT_MIGRATED}: there is no database at {database_file}{hint}")
    if database_file is not None:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        database_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        return await _on(engine, settings, args, out)
    except (OSError, TimeoutError) as exc:
        raise CliError(f"cannot reach the database at {shown_url(url)}: {_reason(exc)}") from None
    except SQLAlchemyError as exc:
        raise CliError(f"the database at {shown_url(url)} failed: {_reason(exc)}") from None
    finally:
        await engine.dispose()


async def _on(
    engine: AsyncEngine, settings: Settings, args: argparse.Namespace, out: Output
) -> int:
    if args.command == "migrate":
        newer = await ahead(engine)
        if newer is not None:
            # A rollback's migrate step must succeed: the schema is additive, old code runs
            # on it (README, "Upgrading and rolling back").
            print(
                f"google-video: the database is at revision {', '.join(newer[0])}, newer than"
                f" this release knows (latest: {', '.join(newer[1])}): this is a newer schema;"
                " nothing to do — roll back the application only (README, Upgrading and"
                " rolling back)",
                file=sys.stderr,
            )
            return 0
        await upgrade(engine)
        out.line("database is at the latest revision")
        return 0
    current = await is_current(engine)
    if current is None:
        raise CliError(
            "the database was migrated by a newer google-video than this one: use that release"
        )
    if not current:
        raise CliError(NOT_MIGRATED)
    if args.command == "secrets":
        return await _reencrypt(engine, settings, out)
    async with engine.begin() as conn:
        if args.command == "keys":
            return await _keys(conn, args, out)
        return await _credits(conn, args, out)


def _reason(exc: BaseException) -> str:
    """The first line of what the driver said (SQLAlchemy adds the statement and a link)."""
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__


# --- keys -----------------------------------------------------------------------------


async def _keys(conn: AsyncConnection, args: argparse.Namespace, out: Output) -> int:
    if args.action == "create":
        try:
            key_id, key = await apikeys.issue_key(
                conn, name=args.name, role=Role(args.role), client=args.client
            )
        except apikeys.ClientRefused as exc:
            raise CliError(f"refused: {exc}", USAGE) from None
        row = await apikeys.find(conn, key_id)
        assert row is not None  # inserted in this transaction
        views.key_created(out, api_key_of(row, key).model_dump(mode="json"))
        return 0
    if args.action == "list":
        rows = await apikeys.list_keys(conn, include_revoked=not args.active)
        data = [api_key_of(r).model_dump(mode="json", exclude={"key"}) for r in rows]
        views.key_list(out, {"object": "list", "data": data})
        return 0
    if not await apikeys.revoke(conn, args.key_id):
        raise CliError(f"no such active key: {args.key_id}", FAILED)
    views.key_revoked(out, {"id": args.key_id, "object": "api_key.revoked", "revoked": True})
    return 0


# --- credits --------------------------------------------------------------------------


async def _credits(conn: AsyncConnection, args: argparse.Namespace, out: Output) -> int:
    client = args.client
    if client != apikeys.ADMIN_CLIENT and client.lower() in apikeys.RESERVED_CLIENTS:
        raise CliError(f"refused: {client!r} is a reserved client id", FAILED)
    if args.action == "show":
        balance = await credits.balance_of(conn, client, args.user)
        rows = await credits.recent_entries(
            conn, client, args.user, limit=args.limit, before=args.before
        )
        body = account_of(args.user, balance, rows, limit=args.limit)
        views.account(out, body.model_dump(mode="json"), client=client)
        return 0
    after = await credits.grant(conn, client, args.user, args.amount, args.reason)
    if after is None:
        raise CliError("refused: the balance would go below zero or past the maximum", FAILED)
    rows = await credits.recent_entries(conn, client, args.user, limit=1, before=None)
    body = account_of(args.user, after, rows, limit=1)
    views.granted(out, body.model_dump(mode="json"), args.amount, client=client)
    return 0


async def _reencrypt(engine: AsyncEngine, settings: Settings, out: Output) -> int:
    report = await reencrypt_all(engine, SecretBox(*settings.secret_keys))
    out.line(f"re-encrypted {report.moved}, already under the current key {report.current}")
    for where in report.unreadable:
        out.note(f"unreadable with SECRET_KEY and SECRET_KEY_PREVIOUS: {where}")
    if report.raced:
        out.note(f"{report.raced} row(s) changed meanwhile: run it again")
    return 0 if report.complete else 1
