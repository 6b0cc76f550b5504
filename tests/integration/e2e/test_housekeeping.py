"""Expired Idempotency-Key records are purged by the worker's hourly job."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select

from core.repo.tables import idempotency
from schemas.clock import utcnow
from worker.jobs.housekeeping import purge_idempotency


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
