"""What an outage of Redis or the database looks like from inside a process.

An outage is an error that says "unreachable, try again later" (a refused or dropped
connection, a timeout, a server shutting down or starting up), as opposed to a bug or a
refused statement, which retrying would only repeat. The worker waits outages out
(``worker/supervisor.py``); anything else still fails loudly.
"""

from __future__ import annotations

import redis.exceptions
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57 operator
# intervention (57P01 admin shutdown, 57P03 "the database system is starting up").
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})

_REDIS_OUTAGES = (
    redis.exceptions.ConnectionError,  # refused, reset, BusyLoadingError after a restart
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a failover in progress: the old primary is a replica
    ConnectionError,
    TimeoutError,
)


def redis_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (raised by a Redis command) means Redis cannot be reached now.

    redis-py reports some lost connections as another error raised while handling one
    (a WATCH that lost its connection raises ``WatchError``): that one counts.
    """
    if isinstance(exc, _REDIS_OUTAGES):
        return True
    cause = exc.__cause__ or exc.__context__
    return isinstance(exc, redis.exceptions.RedisError) and (
        cause is not None and redis_unreachable(cause)
    )


def redis_failed(exc: BaseException) -> bool:
    """Whether ``exc`` came from Redis: unreachable, or refusing what it is asked (out of
    memory, unable to persist) — trouble that passes, unlike a bug of ours."""
    return redis_unreachable(exc) or isinstance(exc, redis.exceptions.RedisError)


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a driver error, wrapped by SQLAlchemy or not ("" without one)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code if isinstance(code, str) else ""


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (raised while using the database) means the database cannot be
    reached now: a dropped or refused connection, a timeout, a server shutting down or
    starting up, a pool with no connection to give."""
    if isinstance(exc, DBAPIError):
        return (
            exc.connection_invalidated
            or isinstance(exc, OperationalError | InterfaceError)
            or sqlstate(exc)[:2] in TRANSIENT_SQLSTATE_CLASSES
        )
    if isinstance(exc, PoolTimeoutError | ConnectionError | TimeoutError):
        return True
    # asyncpg raises its own errors on connect, before SQLAlchemy can wrap them.
    return sqlstate(exc)[:2] in TRANSIENT_SQLSTATE_CLASSES
