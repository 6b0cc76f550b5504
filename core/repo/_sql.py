"""Dialect-aware statement helpers shared by the repositories."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert


def insert_ignoring_conflicts(
    conn: AsyncConnection, table: Table, values: dict[str, Any]
) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).values(**values).on_conflict_do_nothing()
    return sqlite.insert(table).values(**values).on_conflict_do_nothing()


async def autocommit_driver(conn: AsyncConnection) -> Any | None:
    """The ``asyncpg.Connection`` under ``conn`` (inside the engine's pool, its codecs set
    by the dialect: JSON in as text, out as Python objects) when ``conn`` is PostgreSQL in
    autocommit, else None (SQLite, or a transaction: the caller uses SQLAlchemy Core).

    In autocommit each statement is its own transaction, so one run on the driver commits
    exactly as it would through SQLAlchemy; inside a SQLAlchemy transaction the dialect
    begins lazily, so a driver statement could land outside it."""
    sync = conn.sync_connection
    if sync is None or conn.dialect.name != "postgresql":
        return None
    if sync.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        return None
    return (await conn.get_raw_connection()).driver_connection
