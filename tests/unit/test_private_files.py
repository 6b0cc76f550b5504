"""The embedded database and the dev data dir are readable by their owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from core.db import make_engine
from core.migrate import upgrade
from core.private_files import private_dir


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_sqlite_database_and_its_wal_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # what a login shell usually has
    try:
        database = tmp_path / "fresh" / "google-video.db"
        engine = make_engine(f"sqlite+aiosqlite:///{database}")
        await upgrade(engine)
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT count(*) FROM api_keys")
            companions = list(database.parent.glob("google-video.db-*"))
            assert companions  # WAL mode: -wal and -shm exist while connected
            assert {_mode(p) for p in companions} == {0o600}
        await engine.dispose()
    finally:
        os.umask(old)
    assert _mode(database) == 0o600
    assert _mode(database.parent) == 0o700


async def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    database = tmp_path / "old.db"
    database.touch(mode=0o644)
    database.chmod(0o644)
    wal = tmp_path / "old.db-wal"
    wal.touch()
    wal.chmod(0o644)
    await make_engine(f"sqlite+aiosqlite:///{database}").dispose()
    assert (_mode(database), _mode(wal)) == (0o600, 0o600)
    assert _mode(tmp_path) == 0o755  # an existing parent is left alone (it may be /tmp)


def test_private_dir_makes_a_new_or_existing_directory_owner_only(tmp_path: Path) -> None:
    shared = tmp_path / "data"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    assert _mode(private_dir(shared)) == 0o700
    assert _mode(private_dir(tmp_path / "a" / "b")) == 0o700
