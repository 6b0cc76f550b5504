"""purge_idempotency: forget Idempotency-Key records past their expiry (hourly).

Expired records are already ignored when their key comes back; this keeps the table
from growing without bound.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from core.db import autocommit
from core.tables import idempotency
from schemas.tables import utcnow
from worker.context import wctx
from worker.jobs.common import log


async def purge_idempotency(ctx: dict[str, Any]) -> int:
    async with autocommit(wctx(ctx).engine) as conn:
        result = await conn.execute(delete(idempotency).where(idempotency.c.expires_at < utcnow()))
    if result.rowcount:
        log.info("idempotency_purged", records=result.rowcount)
    return int(result.rowcount)
