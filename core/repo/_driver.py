"""Statements run on the driver's own connection (asyncpg), inside SQLAlchemy's engine.

For the hottest paths only: SQLAlchemy's execute path costs more CPU than asyncpg's
(bench/FINDINGS.md, section 1). The connection still comes from the engine's pool and
the transaction, if any, is SQLAlchemy's (behind a transaction pooler, one of asyncpg's
per statement); errors come out as SQLAlchemy would raise them
(``DBAPIError`` subclasses, the connection invalidated when it is gone), so callers
handle an outage as on any other path.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import PooledDriver, behind_pooler

Connection = AsyncConnection | PooledDriver

# What asyncpg raises for a statement that failed or a connection that broke.
_DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # e.g. a statement on a connection being dropped
    OSError,
)


def autocommit(conn: Connection) -> bool:
    """Whether a driver statement on ``conn`` is its own transaction, so it commits
    exactly as it would through SQLAlchemy: a :class:`PooledDriver`
    (``core.db.driver_autocommit``), or PostgreSQL in autocommit (``core.db.autocommit``)
    or with no SQLAlchemy transaction begun. Inside a SQLAlchemy transaction the dialect
    begins lazily, so a driver statement could land outside it; SQLite has no driver path."""
    if isinstance(conn, PooledDriver):
        return True
    sync = conn.sync_connection
    return (
        sync is not None
        and conn.dialect.name == "postgresql"
        and (
            not sync.in_transaction()
            or sync.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        )
    )


async def fetchrow(conn: Connection, sql: str, *args: Any) -> Any:
    """The first row of ``sql`` (``$1``-style parameters ``args``) or None, run on
    ``conn``'s asyncpg connection: prepared once per connection (asyncpg's statement
    cache), in ``conn``'s transaction if one has begun (else on its own).

    Raises ``DBAPIError`` (``DataError``, ``IntegrityError``…, ``connection_invalidated``
    when the connection is gone) as SQLAlchemy's own execute would.
    """
    return await _run(conn, "fetchrow", sql, args)


async def execute(conn: Connection, sql: str, *args: Any) -> str:
    """:func:`fetchrow` for a statement whose status tag is the answer (``"INSERT 0 1"``)."""
    status: str = await _run(conn, "execute", sql, args)
    return status


async def _run(conn: Connection, method: str, sql: str, args: tuple[Any, ...]) -> Any:
    if isinstance(conn, PooledDriver):
        driver = conn.driver
    else:
        driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None  # a checked-out connection has its driver's
    call = getattr(driver, method)
    try:
        if _pooled(conn) and not driver.is_in_transaction():
            # Without a statement cache asyncpg prepares and runs in two round trips,
            # which a transaction pooler may send to two server connections: pin them.
            async with driver.transaction():
                return await call(sql, *args)
        return await call(sql, *args)
    except _DRIVER_ERRORS as exc:
        gone = bool(driver.is_closed())
        if gone:
            await conn.invalidate()
        raise DBAPIError.instance(
            sql, None, exc, Exception, connection_invalidated=gone, dialect=conn.dialect
        ) from exc


def _pooled(conn: Connection) -> bool:
    return behind_pooler(conn.engine.url)
