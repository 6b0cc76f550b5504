"""Expired Idempotency-Key records are purged by the worker's hourly job."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select

from core.repo.tables import activity, idempotency
from schemas.clock import utcnow
from worker.context import wctx
from worker.jobs.housekeeping import purge_activity, purge_idempotency


async def test_purge_removes_only_expired_idempotency_records(engine, job_ctx):
    now = utcnow()
    async with engine.begin() as conn:
        for key, expires in (
            ("old", now - timedelta(seconds=1)),
            ("live", now + timedelta(days=1)),
        ):
            await conn.execute(
                insert(idempotency).values(
                    client_id="acme",
                    key=key,
                    request_hash="0" * 64,
                    created_at=now,
                    expires_at=expires,
                )
            )
    assert await purge_idempotency(job_ctx) == 1
    async with engine.connect() as conn:
        keys = (await conn.execute(select(idempotency.c.key))).scalars().all()
    assert keys == ["live"]


async def test_activity_older_than_the_retention_is_purged_unless_kept_forever(
    engine, job_ctx, settings
):
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            insert(activity),
            [
                {"task_id": "video_x", "at": at, "kind": "poll", "detail": {}}
                for at in (now - timedelta(days=40), now - timedelta(days=29), now)
            ],
        )
    context = wctx(job_ctx)
    try:
        context.settings = settings.model_copy(update={"activity_retention_days": 0})
        assert await purge_activity(job_ctx) == 0
        context.settings = settings.model_copy(update={"activity_retention_days": 30})
        assert await purge_activity(job_ctx) == 1
    finally:
        context.settings = settings
    async with engine.connect() as conn:
        left = (await conn.execute(select(activity.c.at))).scalars().all()
    assert len(left) == 2
