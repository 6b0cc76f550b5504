"""The database as a dependency: is it answering?"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_PING = text("SELECT 1")


async def ping(conn: AsyncConnection) -> None:
    """One round trip; raises what the driver raises when the database is down."""
    await conn.execute(_PING)
