"""purge_idempotency: forget Idempotency-Key records past their expiry (hourly).

Expired records are already ignored when their key comes back; this keeps the table
from growing without bound.

purge_uploads: delete uploads past their expiry, object then row (every 5 minutes).
Expired uploads are already refused by the API; no task refers to an upload's object
(a create copies it), so nothing that still needs it is deleted.

purge_activity: delete ``task_activity`` rows (the console's timelines: a row per poll,
submit call and transition) older than ``ACTIVITY_RETENTION_DAYS`` (hourly; 0 keeps them).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from core import uploads
from core.db import autocommit
from core.repo import activity, idempotency
from schemas.clock import utcnow
from worker.context import wctx

log = structlog.get_logger(__name__)


async def purge_idempotency(ctx: dict[str, Any]) -> int:
    async with autocommit(wctx(ctx).engine) as conn:
        purged = await idempotency.purge_expired(conn)
    if purged:
        log.info("idempotency_purged", records=purged)
    return purged


async def purge_uploads(ctx: dict[str, Any]) -> int:
    context = wctx(ctx)
    purged = await uploads.purge_expired(context.engine, context.storage)
    if purged:
        log.info("uploads_purged", uploads=purged)
    return purged


async def purge_activity(ctx: dict[str, Any]) -> int:
    context = wctx(ctx)
    days = context.settings.activity_retention_days
    if days == 0:
        return 0
    async with autocommit(context.engine) as conn:
        purged = await activity.purge_before(conn, utcnow() - timedelta(days=days))
    if purged:
        log.info("activity_purged", rows=purged, retention_days=days)
    return purged
