"""``google-video``: one command for every process and operator task.

The only module that knows both ``service`` and ``worker``; each subcommand imports
what it runs lazily, so ``google-video api`` never loads worker code and vice versa.

Three kinds of subcommand: processes (``api``, ``worker``, ``migrate``, ``dev``,
``sim``); the people commands over the HTTP API (``videos``, ``config``); ``keys`` and
``credits``, on the database or over the API by the rule of ``cli.target``. Every
failure of the last two kinds is one line on stderr and a non-zero exit
(``cli.failures``), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from cli.failures import FAILED, INTERRUPTED, USAGE, CliError, one_line

if TYPE_CHECKING:
    from cli.output import Output
    from schemas.settings import Settings

PROG = "google-video"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and ``--help`` says the rest)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {one_line(message)} (see --help)\n")


def _parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="One command for every process and operator task; `COMMAND --help` for"
        " each. The people commands talk to GOOGLE_VIDEO_URL with GOOGLE_VIDEO_API_KEY.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    sub.add_parser("migrate", help="apply database migrations", parents=[_database()])

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

    _videos(sub)
    _keys(sub)
    _credits(sub)
    _config(sub)

    secrets = sub.add_parser("secrets", help="stored secrets (on the database)")
    secrets_sub = secrets.add_subparsers(dest="action", required=True)
    secrets_sub.add_parser(
        "reencrypt",
        help="re-encrypt every stored secret under the current SECRET_KEY (after a rotation;"
        " idempotent)",
        parents=[_database()],
    )
    return parser


def _http() -> Parser:
    common = Parser(add_help=False)
    group = common.add_argument_group("the HTTP API")
    group.add_argument("--url", help="the API's base URL (GOOGLE_VIDEO_URL; http://127.0.0.1:8000)")
    group.add_argument("--api-key", help="an API key (GOOGLE_VIDEO_API_KEY)")
    group.add_argument(
        "--timeout", type=_seconds, default=None, help="seconds to wait for each answer (30)"
    )
    group.add_argument("--json", action="store_true", help="print the raw JSON answers")
    return common


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 3600 seconds")
    return value


def _page_size(text: str) -> int:
    """``--limit``: 1 to 100 entries, as the API pages them."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is not between 1 and 100")
    return value


def _database() -> Parser:
    common = Parser(add_help=False)
    group = common.add_argument_group("the database")
    group.add_argument(
        "--data-dir", help="the embedded SQLite's folder (GOOGLE_VIDEO_DATA_DIR; .data)"
    )
    group.add_argument("--database-url", help="a database URL (GOOGLE_VIDEO_DATABASE_URL)")
    return common


def _both() -> list[Parser]:
    """Options of a command that runs on the database or over the API (``cli.target``)."""
    return [_http(), _database()]


def _videos(sub: argparse._SubParsersAction[Parser]) -> None:
    videos = sub.add_parser("videos", help="create, follow and download videos (HTTP API)")
    actions = videos.add_subparsers(dest="action", required=True, metavar="ACTION")
    http = [_http()]

    create = actions.add_parser("create", help="create a video", parents=http)
    create.add_argument("--prompt", required=True)
    create.add_argument(
        "--image",
        action="append",
        metavar="PATH|URL",
        help="a local image (uploaded first), an https:// URL, a data: URI or an upload_ id;"
        " repeat for several (first and last frame, elements)",
    )
    create.add_argument("--model", help="a model id (google-video's default otherwise)")
    create.add_argument("--seconds", help="length, as the model accepts it (e.g. 8)")
    create.add_argument("--size", help="WIDTHxHEIGHT, e.g. 1280x720")
    create.add_argument("--aspect-ratio", help="e.g. 16:9")
    create.add_argument("--user", help="the end user billed (default: the key's client)")
    create.add_argument("--seed", type=int)
    create.add_argument("--enhance-prompt", action=argparse.BooleanOptionalAction, default=None)
    create.add_argument("--metadata", action="append", metavar="NAME=VALUE")
    create.add_argument("--webhook-url")
    create.add_argument(
        "--idempotency-key", help="reuse to retry a create without a second charge (default: new)"
    )
    create.add_argument(
        "--wait", action="store_true", help="follow it with a progress bar, then download it"
    )
    create.add_argument(
        "--output", "-o", metavar="PATH", help="where the MP4 goes (implies --wait; - is stdout)"
    )

    listing = actions.add_parser("list", help="list videos, newest first", parents=http)
    listing.add_argument("--limit", type=_page_size, default=20)
    listing.add_argument("--after", help="the last id of the previous page")
    listing.add_argument("--user")
    listing.add_argument("--status", choices=["queued", "in_progress", "completed", "failed"])
    listing.add_argument("--order", choices=["asc", "desc"], default="desc")

    for name, what in (("get", "show a video"), ("cancel", "cancel an unfinished video")):
        actions.add_parser(name, help=what, parents=http).add_argument("video_id")
    actions.add_parser(
        "delete", help="delete a video (cancelling it if unfinished)", parents=http
    ).add_argument("video_id")
    download = actions.add_parser("download", help="download a finished video", parents=http)
    download.add_argument("video_id")
    download.add_argument("--output", "-o", metavar="PATH", help="default <id>.mp4; - is stdout")
    download.add_argument(
        "--variant", choices=["video", "thumbnail", "spritesheet"], default="video"
    )


def _keys(sub: argparse._SubParsersAction[Parser]) -> None:
    keys = sub.add_parser("keys", help="manage API keys (database or HTTP API)")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print it once", parents=_both())
    create.add_argument("--role", choices=["client", "admin"], default="client")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--client",
        help="an existing or new tenant the key acts for (default: a new tenant named like the"
        " key; admin keys act for 'admin')",
    )
    listing = actions.add_parser("list", help="list keys (never their secret)", parents=_both())
    listing.add_argument("--active", action="store_true", help="leave revoked keys out")
    revoke = actions.add_parser("revoke", help="revoke a key by id", parents=_both())
    revoke.add_argument("key_id")


def _credits(sub: argparse._SubParsersAction[Parser]) -> None:
    credits = sub.add_parser(
        "credits",
        help="show or grant a user's credits (database or HTTP API)",
        description="`credits USER AMOUNT` is kept as `credits grant USER AMOUNT`.",
    )
    actions = credits.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="balance, held and ledger entries", parents=_both())
    show.add_argument("user")
    show.add_argument("--client", help="the user's tenant (required on the database)")
    show.add_argument("--limit", type=_page_size, default=20)
    show.add_argument("--before", type=int, help="entries older than this entry id")
    grant = actions.add_parser(
        "grant", help="grant credits (negative: adjust down, never below zero)", parents=_both()
    )
    grant.add_argument("user")
    grant.add_argument("amount", type=int)
    grant.add_argument(
        "--client", help="the user's tenant (required on the database; API: the admin's own)"
    )
    grant.add_argument("--reason", default="cli grant")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes from 1 to 64")
    return value


def _config(sub: argparse._SubParsersAction[Parser]) -> None:
    config = sub.add_parser("config", help="the runtime configuration (HTTP API, admin key)")
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("show", help="the configuration (upstream key masked)", parents=[_http()])
    put = actions.add_parser(
        "set",
        help="change fields: NAME=VALUE (text fields as typed, others JSON; NAME=@FILE reads"
        " the value from a file)",
        parents=[_http()],
    )
    put.add_argument("settings", nargs="+", metavar="NAME=VALUE")
    test = actions.add_parser(
        "test",
        help="check the upstream without creating a paid job (exit 1 unless the key is"
        " accepted); options try a candidate before saving it",
        parents=[_http()],
    )
    test.add_argument("--kind", help="upstream_kind to try")
    test.add_argument("--base-url", help="upstream_base_url to try")
    test.add_argument("--upstream-key", help="upstream_api_key to try")


_CREDITS_ACTIONS = {"show", "grant", "-h", "--help"}


def _compatible(argv: list[str]) -> list[str]:
    """``credits USER AMOUNT …`` (the form before ``show``/``grant``) as ``credits grant``."""
    if len(argv) >= 2 and argv[0] == "credits" and argv[1] not in _CREDITS_ACTIONS:
        return ["credits", "grant", *argv[1:]]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_compatible(list(sys.argv[1:] if argv is None else argv)))
    if args.command in ("api", "worker", "sim", "dev"):
        return _process(args)
    try:
        return _command(args)
    except CliError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and nothing at exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return FAILED
    except Exception as exc:
        if os.environ.get("GOOGLE_VIDEO_LOG_LEVEL", "").upper() == "DEBUG":
            raise
        print(
            f"{PROG}: unexpected {type(exc).__name__}: {one_line(str(exc))}"
            " (GOOGLE_VIDEO_LOG_LEVEL=DEBUG shows the traceback)",
            file=sys.stderr,
        )
        return FAILED


def _process(args: argparse.Namespace) -> int:
    from core.logging import configure

    try:
        settings = _settings({})
    except CliError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.code
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
    from cli.dev import run_dev

    return run_dev(args.host, args.port, args.data_dir, args.sim_port)


def _command(args: argparse.Namespace) -> int:
    from cli.output import Output
    from cli.target import Side, side

    out = Output(as_json=getattr(args, "json", False))
    if args.command in ("videos", "config"):
        return _over_http(args, out)
    if args.command in ("keys", "credits"):
        where, by_default = side(args)
        if where == Side.API:
            return _over_http(args, out)
        return _on_database(args, out, by_default=by_default)
    return _on_database(args, out, by_default=False)


def _over_http(args: argparse.Namespace, out: Output) -> int:
    from cli.http_client import ApiClient, Remote

    remote = Remote.of(args.url, args.api_key, args.timeout)
    with ApiClient(remote) as api:
        if args.command == "videos":
            from cli import videos

            return videos.run(api, out, args)
        from cli import remote_admin

        run = {
            "keys": remote_admin.keys,
            "credits": remote_admin.credits,
            "config": remote_admin.config,
        }[args.command]
        return run(api, out, args)


def _on_database(args: argparse.Namespace, out: Output, *, by_default: bool) -> int:
    from cli import admin
    from core.logging import configure

    overrides: dict[str, object] = {}
    if args.data_dir is not None:
        overrides |= {"data_dir": Path(args.data_dir), "database_url": args.database_url or ""}
    elif args.database_url is not None:
        overrides["database_url"] = args.database_url
    from_env = None if args.data_dir is not None else os.environ.get("GOOGLE_VIDEO_DATABASE_URL")
    _async_driver(args.database_url or from_env or "")
    settings = _settings(overrides)
    configure(settings.log_format, settings.log_level)
    return asyncio.run(admin.dispatch(settings, args, out, by_default=by_default))


def _settings(overrides: dict[str, object]) -> Settings:
    """The settings from the environment (and `overrides`); raises `CliError` (exit 2)
    naming each invalid setting and what is wrong with it -- never its value, which may
    be a secret."""
    from pydantic import ValidationError

    from schemas.settings import Settings

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}".lstrip(": ")
            for e in exc.errors(include_url=False)
        )
        raise CliError(f"the settings are not usable: {problems}", USAGE) from None


def _async_driver(url: str) -> None:
    """Refuse a database URL naming a synchronous driver, saying which one to name."""
    scheme = url.partition("://")[0]
    better = {
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
        "postgresql+psycopg2": "postgresql+asyncpg",
        "sqlite": "sqlite+aiosqlite",
        "sqlite+pysqlite": "sqlite+aiosqlite",
    }.get(scheme)
    if better is not None and "://" in url:
        raise CliError(
            f"the database URL starts {scheme}://, a synchronous driver: use {better}://", USAGE
        )


if __name__ == "__main__":
    sys.exit(main())
