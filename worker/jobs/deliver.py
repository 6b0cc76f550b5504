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

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from core import queue
from core.repo import events, webhooks
from core.repo.events import Outgoing
from core.webhooks.secrets import client_secret_row, live_secrets
from core.webhooks.signing import headers
from schemas.clock import utcnow
from schemas.status import DeliveryStatus
from worker.context import WorkerContext, wctx
from worker.webhooks.sender import Attempt, post

log = structlog.get_logger(__name__)

MAX_RETRY_AFTER = 24 * 3600.0


async def deliver_webhook(ctx: dict[str, Any], delivery_id: str) -> str:
    context = wctx(ctx)
    settings = context.settings
    async with context.engine.begin() as conn:
        row = await events.outgoing(conn, delivery_id)
        if row is None or row.status != DeliveryStatus.PENDING:
            return "skipped"
        signing = await _secrets(context, conn, row)
        if signing is None:
            await events.close(
                conn, delivery_id, DeliveryStatus.CANCELLED, "endpoint deleted or disabled"
            )
            return "endpoint gone"
        in_flight = utcnow() + timedelta(seconds=settings.webhook_timeout_seconds + 5)
        if not await events.claim(conn, row, in_flight):
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


async def _secrets(
    context: WorkerContext, conn: AsyncConnection, row: Outgoing
) -> list[str] | None:
    now, box = utcnow(), context.config.box
    if row.endpoint_id is None:
        return live_secrets(box, await client_secret_row(conn, box, row.client_id), now)
    endpoint = await webhooks.endpoint(conn, row.endpoint_id)
    if endpoint is None or endpoint.deleted_at is not None or not endpoint.enabled:
        return None
    return live_secrets(box, endpoint, now)


async def _settle(context: WorkerContext, row: Outgoing, attempt: Attempt) -> str:
    number = row.attempts + 1
    schedule = context.settings.webhook_schedule
    bound = log.bind(delivery_id=row.id, attempt=number, status_code=attempt.status_code)
    delay: float | None = None
    if attempt.delivered:
        status = DeliveryStatus.DELIVERED
    elif attempt.status_code == 410 and row.endpoint_id is not None:
        status = DeliveryStatus.DISABLED
    elif number > len(schedule):
        status = DeliveryStatus.FAILED
    else:
        status = DeliveryStatus.PENDING
        delay = _next_delay(schedule[number - 1], attempt.retry_after)
    async with context.engine.begin() as conn:
        await events.record(
            conn,
            row.id,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            error=attempt.error,
            status=status,
            next_attempt_at=None if delay is None else utcnow() + timedelta(seconds=delay),
        )
        if status == DeliveryStatus.DISABLED and row.endpoint_id is not None:
            await webhooks.disable_endpoint(conn, row.endpoint_id, "the endpoint answered 410 Gone")
    if delay is not None:
        job = queue.deliver(row.id, number, delay=delay)
        await queue.enqueue_after_commit(context.redis, job)
    outcome = "retry" if status == DeliveryStatus.PENDING else str(status)
    bound.info("webhook_attempt", outcome=outcome, error=attempt.error)
    return outcome


def _next_delay(scheduled: float, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    return scheduled * random.uniform(0.9, 1.1)  # jitter spreads retries of an outage
