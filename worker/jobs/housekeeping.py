"""purge_idempotency: forget Idempotency-Key records past their expiry (hourly).

Expired records are already ignored when their key comes back; this keeps the table
from growing without bound.
"""

from __future__ import annotations

from typing import Any

import structlog

from core.db import autocommit
from core.repo import idempotency
from worker.context import wctx

log = structlog.get_logger(__name__)


async def purge_idempotency(ctx: dict[str, Any]) -> int:
    async with autocommit(wctx(ctx).engine) as conn:
        purged = await idempotency.purge_expired(conn)
    if purged:
        log.info("idempotency_purged", records=purged)
    return purged
