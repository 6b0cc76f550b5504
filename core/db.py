"""Engine construction for PostgreSQL (asyncpg) and the embedded SQLite default."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from core.private_files import private_sqlite


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database, ``:memory:`` or a ``file:``
    URI. Raises ``sqlalchemy.exc.ArgumentError`` for a string that is no database URL."""
    parsed = make_url(url)
    database = parsed.database
    if not parsed.drivername.startswith("sqlite") or not database:
        return None
    return None if database == ":memory:" or database.startswith("file:") else Path(database)


def shown_url(url: str) -> str:
    """``url`` to print: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    if url.startswith("sqlite"):
        if (database := sqlite_file(url)) is not None:
            private_sqlite(database)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # A fixed pool: overflow connections are closed on return and reopened on the next
    # burst (a new PostgreSQL backend each time). No pre-ping (three round trips per
    # checkout): after a database restart the first statement on each stale connection
    # fails, the dialect invalidates the pool, the API answers 503 and jobs are retried.
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=False,
        pool_recycle=1800,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for one self-contained statement: no BEGIN/COMMIT round trips."""
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")
