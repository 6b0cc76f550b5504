"""Operator subcommands that talk to the database directly: migrate, keys, credits,
secrets."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core import apikeys
from core.db import make_engine
from core.migrate import upgrade
from core.reencrypt import reencrypt_all
from core.repo import credits
from core.secrets import SecretBox
from schemas.api import Grant
from schemas.fields import ClientName, Line, UserName
from schemas.settings import Settings
from schemas.status import Role

# The API's rules for the names and amounts an operator types (one user-name rule).
_USER: TypeAdapter[str] = TypeAdapter(UserName)
_CLIENT: TypeAdapter[str] = TypeAdapter(ClientName)
_KEY_NAME: TypeAdapter[str] = TypeAdapter(Line)


def _invalid(args: argparse.Namespace) -> str | None:
    """Why the arguments cannot be stored, or None."""
    try:
        if args.command == "credits":
            _USER.validate_python(args.user)
            _CLIENT.validate_python(args.client)
            Grant(amount=args.amount, reason=args.reason)
        if args.command == "keys" and args.action == "create":
            if args.client is not None or args.role == Role.CLIENT:
                _CLIENT.validate_python(args.client or args.name)
            _KEY_NAME.validate_python(args.name)
    except ValidationError as exc:
        return "; ".join(e["msg"] for e in exc.errors(include_url=False))
    return None


async def dispatch(settings: Settings, args: argparse.Namespace) -> int:
    if (problem := _invalid(args)) is not None:
        print(f"refused: {problem}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        if args.command == "migrate":
            await upgrade(engine)
            print("database is at the latest revision")
            return 0
        if args.command == "secrets":
            return await _reencrypt(engine, settings)
        async with engine.begin() as conn:
            if args.command == "keys":
                return await _KEYS[args.action](conn, args)
            if args.command == "credits":
                return await _credits(conn, args)
        return 2
    finally:
        await engine.dispose()


async def _keys_create(conn: AsyncConnection, args: argparse.Namespace) -> int:
    role = Role(args.role)
    default = apikeys.ADMIN_CLIENT if role == Role.ADMIN else args.name
    try:
        key_id, key = await apikeys.create_key(
            conn,
            client_id=args.client or default,
            name=args.name,
            role=role,
            new_client=args.client is None,
        )
    except apikeys.ClientRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(f"id:   {key_id}\nkey:  {key}\n(shown once: store it now)")
    return 0


async def _keys_list(conn: AsyncConnection, args: argparse.Namespace) -> int:
    columns = ("id", "prefix", "client", "name", "role", "created", "last used", "revoked")
    rows = [columns] + [
        (
            k.id,
            k.prefix + "…",
            k.client_id,
            k.name,
            str(k.role),
            _when(k.created_at),
            _when(k.last_used_at),
            _when(k.revoked_at),
        )
        for k in await apikeys.list_keys(conn, include_revoked=not args.active)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at is not None else "-"


async def _keys_revoke(conn: AsyncConnection, args: argparse.Namespace) -> int:
    ok = await apikeys.revoke(conn, args.key_id)
    print("revoked" if ok else "no such active key", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


_KEYS = {"create": _keys_create, "list": _keys_list, "revoke": _keys_revoke}


async def _credits(conn: AsyncConnection, args: argparse.Namespace) -> int:
    if args.client != apikeys.ADMIN_CLIENT and args.client.lower() in apikeys.RESERVED_CLIENTS:
        print(f"refused: {args.client!r} is a reserved client id", file=sys.stderr)
        return 1
    after = await credits.grant(conn, args.client, args.user, args.amount, args.reason)
    if after is None:
        print("refused: the balance would go below zero or past the maximum", file=sys.stderr)
        return 1
    print(f"balance {after.balance}, held {after.held}")
    return 0


async def _reencrypt(engine: AsyncEngine, settings: Settings) -> int:
    report = await reencrypt_all(engine, SecretBox(*settings.secret_keys))
    print(f"re-encrypted {report.moved}, already under the current key {report.current}")
    for where in report.unreadable:
        print(f"unreadable with SECRET_KEY and SECRET_KEY_PREVIOUS: {where}", file=sys.stderr)
    if report.raced:
        print(f"{report.raced} row(s) changed meanwhile: run it again", file=sys.stderr)
    return 0 if report.complete else 1
