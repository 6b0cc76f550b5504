"""deliver_webhook: one signed attempt of one delivery, then its next step.

``webhook-id`` is the event id (stable across retries and replays); timestamp and
signatures are fresh per attempt. 2xx delivers, 410 disables the endpoint, a target the
egress policy refuses (checked again at every attempt: DNS answers and the allowlist
change) fails the delivery at once, anything else retries on the configured schedule with
jitter; a receiver's Retry-After can lengthen a wait but never shorten it, nor push an
attempt past the schedule's end (:func:`next_delay`).
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from core import egress, queue
from core.metrics import WEBHOOK_DELIVERIES
from core.repo import events, webhooks
from core.repo.events import Outgoing
from core.webhooks.secrets import client_secret_row, live_secrets
from core.webhooks.signing import headers
from schemas.clock import utcnow
from schemas.status import DeliveryStatus
from worker.context import WorkerContext, wctx
from worker.log_context import bind_request
from worker.webhooks.sender import Attempt, post

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"


async def deliver_webhook(ctx: dict[str, Any], delivery_id: str) -> str:
    context = wctx(ctx)
    settings = context.settings
    async with context.engine.begin() as conn:
        row = await events.outgoing(conn, delivery_id)
        if row is None or row.status != DeliveryStatus.PENDING:
            return "skipped"
        bind_request(row.request_id, task_id=row.task_id)
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
    sent = headers(signing, row.event_id, int(time.time()), body)
    if row.request_id:  # the create's: one id from the request to its webhook
        sent[REQUEST_ID_HEADER] = row.request_id
    attempt = await post(
        context.webhooks,
        row.url,
        sent,
        body,
        policy=egress.Policy.from_settings(settings),
        max_seconds=settings.webhook_timeout_seconds,
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
    bound = log.bind(delivery_id=row.id, attempt=number, status_code=attempt.status_code)
    delay: float | None = None
    if attempt.delivered:
        status = DeliveryStatus.DELIVERED
    elif attempt.refused:
        status = DeliveryStatus.FAILED
    elif attempt.status_code == 410 and row.endpoint_id is not None:
        status = DeliveryStatus.DISABLED
    else:
        schedule = context.settings.webhook_schedule
        end = schedule_end(schedule, context.settings.webhook_timeout_seconds + 5)
        age = (utcnow() - row.created_at).total_seconds()
        delay = next_delay(schedule, number, attempt.retry_after, age, end)
        status = DeliveryStatus.FAILED if delay is None else DeliveryStatus.PENDING
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
    WEBHOOK_DELIVERIES.labels(outcome).inc()
    bound.info("webhook_attempt", outcome=outcome, error=attempt.error)
    return outcome


JITTER = 0.1


def schedule_end(schedule: list[float], attempt_timeout: float) -> float:
    """The schedule's end in seconds from a delivery's creation: every step at its longest
    jitter plus, per attempt, the time an attempt may take (``attempt_timeout``)."""
    return sum(schedule) * (1 + JITTER) + len(schedule) * attempt_timeout


def next_delay(
    schedule: list[float], attempt: int, retry_after: float | None, age: float, end: float
) -> float | None:
    """Seconds until the next attempt after failed attempt number ``attempt`` (1-based),
    or None when the delivery has used up its schedule.

    ``schedule[i]`` is the wait after attempt ``i + 1``, jittered ±10 % so the retries of one
    outage spread out. ``age`` is the delivery's age and ``end`` the schedule's end
    (:func:`schedule_end`), both in seconds: no attempt is planned after ``end``. A
    receiver's ``Retry-After`` (seconds, ``core.retry_after``) is honoured when longer than
    the step, up to ``end`` (a huge value means one last attempt there), and ignored when
    shorter, so ``Retry-After: 0`` cannot burn the schedule in a burst. Standard Webhooks
    leaves Retry-After to the sender; these bounds are ours.
    """
    remaining = end - age
    if attempt > len(schedule) or remaining <= 0:
        return None
    delay = schedule[attempt - 1] * random.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return min(delay, remaining)
