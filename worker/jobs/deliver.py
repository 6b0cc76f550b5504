"""deliver_webhook: one signed attempt of one delivery, then its next step.

``webhook-id`` is the event id (stable across retries and replays); timestamp and
signatures are fresh per attempt. 2xx delivers, 410 disables the endpoint, 429/503
honour Retry-After, anything else retries on the configured schedule with jitter.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

from core.webhook_secrets import client_secret_row, live_secrets
from schemas import jobs
from schemas.tables import utcnow
from schemas.webhooks import headers
from worker import delivery_queries as queries
from worker.context import WorkerContext, wctx
from worker.jobs.common import log
from worker.webhooks.sender import Attempt, post

MAX_RETRY_AFTER = 24 * 3600.0


async def deliver_webhook(ctx: dict[str, Any], delivery_id: str) -> str:
    context = wctx(ctx)
    settings = context.settings
    async with context.engine.begin() as conn:
        row = await queries.load(conn, delivery_id)
        if row is None or row.status != "pending":
            return "skipped"
        signing = await _secrets(context, conn, row)
        if signing is None:
            await queries.close(conn, delivery_id, "cancelled", "endpoint deleted or disabled")
            return "endpoint gone"
        in_flight = utcnow() + timedelta(seconds=settings.webhook_timeout_seconds + 5)
        if not await queries.claim(conn, row, in_flight):
            return "lost race"
    body = row.body.encode()
    attempt = await post(
        context.webhooks,
        row.url,
        headers(signing, row.event_id, int(time.time()), body),
        body,
        allow_private=settings.webhook_allow_private,
    )
    return await _settle(context, row, attempt)


async def _secrets(context: WorkerContext, conn: Any, row: Any) -> list[str] | None:
    now, box = utcnow(), context.config.box
    if row.endpoint_id is None:
        return live_secrets(box, await client_secret_row(conn, box, row.client_id), now)
    endpoint = await queries.endpoint(conn, row.endpoint_id)
    if endpoint is None or endpoint.deleted_at is not None or not endpoint.enabled:
        return None
    return live_secrets(box, endpoint, now)


async def _settle(context: WorkerContext, row: Any, attempt: Attempt) -> str:
    number = row.attempts + 1
    schedule = context.settings.webhook_schedule
    bound = log.bind(delivery_id=row.id, attempt=number, status_code=attempt.status_code)
    async with context.engine.begin() as conn:
        if attempt.delivered:
            await queries.record(conn, row.id, attempt, status="delivered", next_attempt_at=None)
            outcome = "delivered"
        elif attempt.status_code == 410 and row.endpoint_id is not None:
            await queries.record(conn, row.id, attempt, status="disabled", next_attempt_at=None)
            await queries.disable_endpoint(conn, row.endpoint_id, "the endpoint answered 410 Gone")
            outcome = "disabled"
        elif number > len(schedule):
            await queries.record(conn, row.id, attempt, status="failed", next_attempt_at=None)
            outcome = "failed"
        else:
            delay = _next_delay(schedule[number - 1], attempt.retry_after)
            due = utcnow() + timedelta(seconds=delay)
            await queries.record(conn, row.id, attempt, status="pending", next_attempt_at=due)
            outcome = "retry"
    if outcome == "retry":
        await context.redis.enqueue_job(
            jobs.DELIVER, row.id, _job_id=jobs.deliver_job_id(row.id, number), _defer_by=delay
        )
    bound.info("webhook_attempt", outcome=outcome, error=attempt.error)
    return outcome


def _next_delay(scheduled: float, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    return scheduled * random.uniform(0.9, 1.1)  # jitter spreads retries of an outage
