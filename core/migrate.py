"""Schema migrations (Alembic), additive only, on PostgreSQL and SQLite alike."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def is_current(engine: AsyncEngine) -> bool | None:
    """True when the database is at the newest revision this code knows; False when it
    is behind (or was never migrated); None when it is at a revision this code does not
    know (a newer release migrated it)."""

    def check(connection: Connection) -> bool | None:
        script = ScriptDirectory.from_config(alembic_config(connection))
        current = set(MigrationContext.configure(connection).get_current_heads())
        known = {revision.revision for revision in script.walk_revisions()}
        if not current <= known:
            return None
        return current == set(script.get_heads())

    async with engine.connect() as conn:
        return await conn.run_sync(check)


async def ahead(engine: AsyncEngine) -> tuple[list[str], list[str]] | None:
    """``(the database's revisions, the newest this code knows)`` when the database is at a
    revision this code does not know (a newer release migrated it: a rollback); else None."""

    def check(connection: Connection) -> tuple[list[str], list[str]] | None:
        script = ScriptDirectory.from_config(alembic_config(connection))
        current = set(MigrationContext.configure(connection).get_current_heads())
        known = {revision.revision for revision in script.walk_revisions()}
        if current <= known:
            return None
        return sorted(current), sorted(script.get_heads())

    async with engine.connect() as conn:
        return await conn.run_sync(check)
