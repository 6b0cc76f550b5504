"""Engine construction for PostgreSQL (asyncpg) and the embedded SQLite default."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

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
    """An engine for ``url`` (``postgresql+asyncpg://…`` or ``sqlite+aiosqlite://…``).

    ``?pgbouncer=true`` on a PostgreSQL URL (Prisma's spelling of the same need) says a
    transaction-mode pooler (PgBouncer ``pool_mode = transaction``) stands between: each
    transaction may run on another server connection, so no prepared statement may outlive
    it. The parameter is removed; asyncpg's statement cache and SQLAlchemy's are turned off
    and every statement gets a unique name (SQLAlchemy's asyncpg dialect docs, "Prepared
    Statement Name with PGBouncer"; asyncpg issue 837). Raises ValueError for another
    value of ``pgbouncer``.

    ``?sslmode=…`` (libpq's spelling, what most providers hand out) becomes asyncpg's
    ``ssl=…``, which takes the same modes: asyncpg refuses ``sslmode`` as an argument."""
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
    parsed = make_url(url)
    connect_args: dict[str, Any] = {}
    sslmode = parsed.query.get("sslmode")
    if sslmode is not None and "ssl" not in parsed.query:
        parsed = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": sslmode})
    pooler = parsed.query.get("pgbouncer")
    if pooler is not None:
        if pooler not in ("true", "false"):
            raise ValueError(f"pgbouncer={pooler!r} in DATABASE_URL: use true or false")
        parsed = parsed.difference_update_query(["pgbouncer"])
        if pooler == "true":
            parsed = parsed.update_query_dict({"prepared_statement_cache_size": "0"})
            connect_args = {
                "statement_cache_size": 0,
                "prepared_statement_name_func": _unique_statement_name,
            }
    return create_async_engine(
        parsed,
        connect_args=connect_args,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=False,
        pool_recycle=1800,
    )


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid4().hex}__"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def behind_pooler(url: URL) -> bool:
    """Whether an engine's ``url`` came from a ``?pgbouncer=true`` URL (:func:`make_engine`
    turns the statement caches off for it)."""
    return url.query.get("prepared_statement_cache_size") == "0"


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for one self-contained statement: no BEGIN/COMMIT round trips.

    Behind a transaction pooler (:func:`behind_pooler`) the statement runs in a
    transaction instead: without a statement cache asyncpg prepares and executes in two
    round trips, which the pooler may send to two server connections outside a
    transaction ("prepared statement … does not exist")."""
    if behind_pooler(engine.url):
        async with engine.begin() as conn:
            yield conn
        return
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


class PooledDriver:
    """A connection of ``engine``'s pool checked out with no SQLAlchemy ``Connection``
    around it (``AsyncEngine.raw_connection``), for ``core.repo._driver`` statements only.
    SQLAlchemy begins no transaction on it, so each statement commits on its own (behind a
    transaction pooler, ``_driver`` wraps each in a transaction of its own)."""

    __slots__ = ("_pooled", "engine")

    def __init__(self, engine: AsyncEngine, pooled: PoolProxiedConnection) -> None:
        self.engine = engine
        self._pooled = pooled

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    @property
    def driver(self) -> Any:
        """The driver's connection (``asyncpg.Connection``); None once invalidated."""
        return None if self._pooled.dbapi_connection is None else self._pooled.driver_connection

    def reusable(self) -> bool:
        """Invalidated already, or open and outside any transaction: fit to be released as
        it is (the pool's reset on return rolls back only what SQLAlchemy began: nothing)."""
        driver = self.driver
        return driver is None or not (driver.is_closed() or driver.is_in_transaction())

    async def invalidate(self) -> None:
        """Close it for good: the pool opens a new one in its place."""
        await greenlet_spawn(self._pooled.invalidate)

    async def release(self) -> None:
        """Back to the pool."""
        await greenlet_spawn(self._pooled.close)


@asynccontextmanager
async def driver_autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection | PooledDriver]:
    """A pooled connection for ``core.repo`` functions that run on the driver
    (``core.repo._driver``): on PostgreSQL a :class:`PooledDriver`, each statement
    committing on its own. Cheaper than :func:`autocommit`: no isolation-level switch
    (~70 µs of CPU at checkout and again at return) and no SQLAlchemy ``Connection``
    (~75 µs per checkout); the poll hop checks out twice per hop.

    A connection that a cancellation left mid-statement or inside a transaction (asyncpg
    marks a transaction begun before its BEGIN is sent) is invalidated, not pooled: the
    next statement on it would run inside that transaction and never commit. Returning or
    invalidating is shielded from a second cancellation. SQLite has no driver path:
    there it is :func:`autocommit`, for the Core path."""
    if engine.dialect.name != "postgresql":
        async with autocommit(engine) as conn:
            yield conn
        return
    pooled = PooledDriver(engine, await engine.raw_connection())
    finished = False
    try:
        yield pooled
        finished = True
    except Exception:
        finished = True  # a statement's own error: _driver left the connection consistent
        raise
    finally:
        done = pooled.release() if finished and pooled.reusable() else pooled.invalidate()
        await asyncio.shield(done)
