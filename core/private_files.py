"""Files and directories only their owner may read: the embedded SQLite database (every
stored secret's ciphertext, key hashes, the ledger) and the dev data dir beside it."""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
# SQLite's companions of a database file in WAL mode (created with the file's mode).
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """``path`` created if missing, and made owner-only (0700) either way."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    path.chmod(DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """``path`` created empty if missing (never readable by others, not even briefly),
    and made owner-only (0600) either way."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    path.chmod(FILE_MODE)
    return path


def private_sqlite(database: Path) -> None:
    """The database file owner-only before SQLite opens it (its WAL and shared-memory
    files take the same mode); a missing parent directory is created owner-only, an
    existing one is left as it is (it may be shared, like ``/tmp``)."""
    if not database.parent.exists():
        database.parent.mkdir(mode=DIR_MODE, parents=True)
    private_file(database)
    for suffix in SQLITE_COMPANIONS:
        companion = database.with_name(database.name + suffix)
        if companion.exists():
            companion.chmod(FILE_MODE)
