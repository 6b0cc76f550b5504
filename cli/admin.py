"""Operator subcommands that talk to the database directly: migrate, keys, credits."""

from __future__ import annotations

import argparse
import sys

from pydantic import TypeAdapter, ValidationError

from core import apikeys
from core.db import make_engine
from core.migrate import upgrade
from core.repo import credits
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
            _CLIENT.validate_python(args.client or args.name)
            _KEY_NAME.validate_python(args.name)
    except ValidationError as exc:
        return "; ".join(e["msg"] for e in exc.errors(include_url=False))
    return None


async def dispatch(settings: Settings, args: argparse.Namespace) -> int:
    if (problem := _invalid(args)) is not None:
        print(f"refused: {problem}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        if args.command == "migrate":
            await upgrade(engine)
            print("database is at the latest revision")
            return 0
        async with engine.begin() as conn:
            if args.command == "keys" and args.action == "create":
                key_id, key = await apikeys.create_key(
                    conn, client_id=args.client or args.name, name=args.name, role=Role(args.role)
                )
                print(f"id:   {key_id}\nkey:  {key}\n(shown once: store it now)")
                return 0
            if args.command == "keys" and args.action == "revoke":
                ok = await apikeys.revoke(conn, args.key_id)
                print(
                    "revoked" if ok else "no such active key", file=sys.stdout if ok else sys.stderr
                )
                return 0 if ok else 1
            if args.command == "credits":
                after = await credits.grant(conn, args.client, args.user, args.amount, args.reason)
                if after is None:
                    print(
                        "refused: the balance would go below zero or past the maximum",
                        file=sys.stderr,
                    )
                    return 1
                print(f"balance {after.balance}, held {after.held}")
                return 0
        return 2
    finally:
        await engine.dispose()
