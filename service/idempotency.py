"""``Idempotency-Key`` for creates: one key, one task, one hold (scoped per client).

A claim row is committed before the work starts, so a concurrent retry sees it and
gets 409; the create's own transaction fills in the answer; a create that fails with a
problem deletes the claim so the key can be used again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.repo import idempotency
from core.repo.idempotency import Record
from schemas.clock import utcnow
from schemas.problems import Code
from service.errors import ProblemError

log = structlog.get_logger(__name__)

# A create takes well under a second; a claim this old belongs to a request that died
# (its clean-up could not reach the database either) and may be taken over.
ABANDONED_AFTER = timedelta(seconds=30)


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


def request_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ProblemError(
            Code.INVALID_IDEMPOTENCY_KEY, "Idempotency-Key must be 1-255 printable characters."
        )
    return key


async def claim(
    engine: AsyncEngine, client_id: str, key: str, digest: str, ttl_seconds: int
) -> Replay | None:
    """None when this request owns the key now; a Replay of the first answer otherwise."""
    now = utcnow()
    for _ in range(3):
        async with engine.begin() as conn:
            row = await idempotency.find(conn, client_id, key)
            stale = row is not None and (
                row.expires_at < now
                or (row.response_status is None and row.created_at < now - ABANDONED_AFTER)
            )
            if row is not None and not stale:
                return _existing(row, digest)
            if stale:
                await idempotency.forget(conn, client_id, key, unanswered=False)
            try:
                async with conn.begin_nested():
                    await idempotency.insert_claim(
                        conn,
                        client_id,
                        key,
                        digest,
                        created_at=now,
                        expires_at=now + timedelta(seconds=ttl_seconds),
                    )
            except IntegrityError:
                continue  # someone claimed it between our read and insert: look again
            return None
    raise ProblemError(
        Code.IDEMPOTENCY_IN_PROGRESS, "A request with this Idempotency-Key is in progress."
    )


def _existing(row: Record, digest: str) -> Replay:
    if row.response_status is None:
        raise ProblemError(
            Code.IDEMPOTENCY_IN_PROGRESS,
            "A request with this Idempotency-Key is still in progress.",
        )
    if row.request_hash != digest:
        raise ProblemError(
            Code.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was used with a different request body.",
        )
    return Replay(row.response_status, dict(row.response_body or {}))


async def record(
    conn: AsyncConnection, client_id: str, key: str, status: int, body: dict[str, Any]
) -> None:
    """Store the create's answer in its own transaction: replays of the key get it."""
    await idempotency.answer(conn, client_id, key, status, body)


async def release_claim(engine: AsyncEngine, client_id: str, key: str) -> None:
    """Best effort: called while another error propagates, which must stay the one seen.
    Only an unanswered claim goes: once the create committed (even if the request was
    then cancelled), the key must keep answering with that task, or a retry would pay twice."""
    try:
        async with engine.begin() as conn:
            await idempotency.forget(conn, client_id, key, unanswered=True)
    except (DBAPIError, OSError) as exc:
        log.warning("idempotency_release_failed", key=key, error=type(exc).__name__)
