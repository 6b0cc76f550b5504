"""``google-video``: one command for every process and operator task.

The only module that knows both ``service`` and ``worker``; each subcommand imports
what it runs lazily, so ``google-video api`` never loads worker code and vice versa.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from schemas.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="google-video", description=__doc__.splitlines()[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="command", required=True)

    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument(
        "--workers",
        type=_at_least_one,
        default=1,
        help="API processes on the one port (metrics summed over them; default 1)",
    )

    sub.add_parser("worker", help="run an ARQ worker")
    sub.add_parser("migrate", help="apply database migrations")

    dev = sub.add_parser(
        "dev", help="everything on the embedded default (SQLite, local disk, simulator)"
    )
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--data-dir", default=".data")
    dev.add_argument("--sim-port", type=int, default=0)

    sim = sub.add_parser("sim", help="run the gateway simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8090)
    sim.add_argument("--api-key", default="sim-key")
    sim.add_argument(
        "--quirks", default=None, help="[sim:...] directives applied to every simulated task"
    )

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--role", choices=["client", "admin"], default="client")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--client",
        help="an existing or new tenant the key acts for (default: a new tenant named like the"
        " key; admin keys act for 'admin')",
    )
    listing = keys_sub.add_parser("list", help="list keys (never their secret)")
    listing.add_argument("--active", action="store_true", help="leave revoked keys out")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")

    secrets = sub.add_parser("secrets", help="stored secrets")
    secrets_sub = secrets.add_subparsers(dest="action", required=True)
    secrets_sub.add_parser(
        "reencrypt",
        help="re-encrypt every stored secret under the current SECRET_KEY (after a rotation;"
        " idempotent)",
    )

    credits = sub.add_parser("credits", help="grant or adjust a user's credits")
    credits.add_argument("user")
    credits.add_argument("amount", type=int)
    credits.add_argument("--client", required=True)
    credits.add_argument("--reason", default="cli grant")

    args = parser.parse_args(argv)
    return _run(args)


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes from 1 to 64")
    return value


def _run(args: argparse.Namespace) -> int:
    from core.logging import configure

    settings = Settings()
    configure(settings.log_format, settings.log_level)
    if args.command == "api":
        from cli.api import serve_api

        serve_api(settings, args.host, args.port, args.workers)
        return 0
    if args.command == "worker":
        from worker.main import run_worker

        return run_worker(settings)
    if args.command == "sim":
        from simulator.main import run

        run(args.host, args.port, args.api_key, args.quirks)
        return 0
    if args.command == "dev":
        from cli.dev import run_dev

        return run_dev(args.host, args.port, args.data_dir, args.sim_port)
    from cli import admin

    return asyncio.run(admin.dispatch(settings, args))


if __name__ == "__main__":
    sys.exit(main())
