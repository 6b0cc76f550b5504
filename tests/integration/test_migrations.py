"""The migrations build exactly the schema the SQLModel tables declare, on both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from core.db import make_engine
from core.migrate import upgrade


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def _diff(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(_differences)


async def test_migrated_postgresql_matches_the_models(migrated: AsyncEngine) -> None:
    assert await _diff(migrated) == []


async def test_migrated_sqlite_matches_the_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'schema.db'}")
    try:
        await upgrade(engine)
        assert await _diff(engine) == []
    finally:
        await engine.dispose()
