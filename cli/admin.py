"""Operator subcommands that talk to the database directly: migrate, keys, credits."""

from __future__ import annotations

import argparse
import sys

from core import apikeys
from core.db import make_engine
from core.migrate import upgrade
from core.repo import credits
from schemas.settings import Settings
from schemas.status import Role


async def dispatch(settings: Settings, args: argparse.Namespace) -> int:
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
                    print("refused: the balance would go below zero", file=sys.stderr)
                    return 1
                print(f"balance {after.balance}, held {after.held}")
                return 0
        return 2
    finally:
        await engine.dispose()
