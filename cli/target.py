"""Which side ``keys`` and ``credits`` work on: the database (as an operator on the
host or in a pod) or the HTTP API (as an admin anywhere).

The rule, first match wins:

1. flags: ``--url``/``--api-key`` → the API; ``--data-dir``/``--database-url`` → the
   database; both kinds at once → refused;
2. environment: ``GOOGLE_VIDEO_URL`` → the API; ``GOOGLE_VIDEO_DATABASE_URL`` or
   ``GOOGLE_VIDEO_DATA_DIR`` → the database; both kinds set → refused (say which with a
   flag);
3. nothing: the database in the default data dir (``.data``, what ``make dev`` uses).
"""

from __future__ import annotations

import argparse
import os
from enum import StrEnum

from cli.failures import USAGE, CliError


class Side(StrEnum):
    DATABASE = "database"
    API = "api"


def side(args: argparse.Namespace) -> tuple[Side, bool]:
    """(where the command runs, whether that was chosen by default)."""
    to_api = args.url is not None or args.api_key is not None
    to_database = args.data_dir is not None or args.database_url is not None
    if to_api and to_database:
        raise CliError(
            "--url/--api-key use the HTTP API and --data-dir/--database-url the database:"
            " pass one kind",
            USAGE,
        )
    if to_api:
        return Side.API, False
    if to_database:
        return Side.DATABASE, False
    env_api = bool(os.environ.get("GOOGLE_VIDEO_URL"))
    env_database = bool(
        os.environ.get("GOOGLE_VIDEO_DATABASE_URL") or os.environ.get("GOOGLE_VIDEO_DATA_DIR")
    )
    if env_api and env_database:
        raise CliError(
            "both GOOGLE_VIDEO_URL and GOOGLE_VIDEO_DATABASE_URL (or _DATA_DIR) are set:"
            " pass --url for the HTTP API or --database-url/--data-dir for the database",
            USAGE,
        )
    if env_api:
        return Side.API, False
    return Side.DATABASE, not env_database
