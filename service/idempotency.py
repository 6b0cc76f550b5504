"""``Idempotency-Key`` for creates: one key, one task, one hold (scoped per client).

The key's record is inserted in the create's own transaction, as its first statement,
together with the hold and the task, and answered before that transaction commits. The
record's primary key (client, key) is the claim: there is no separate claim to keep alive
or to time out, however long the request takes (storing input images, a slow upload), and
nothing to clean up when it fails (its transaction rolls back, and the key is free again).

A concurrent request with the same key does its own checks, then inserts the same key: on
PostgreSQL that insert waits for the first transaction (SQLite serialises writers) and
fails once it committed; the loser rolls back its hold and task and answers with the
winner's stored answer. A record without an answer can only have been left by a version
before this one (which committed its claim first); it reads as in progress until expiry.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import autocommit
from core.repo import idempotency
from core.repo.idempotency import Record
from schemas.clock import utcnow
from schemas.problems import Code
from service.errors import ProblemError

# Printable ASCII, as the OpenAPI document says (service.openapi.IDEMPOTENCY_KEY).
_KEY = re.compile(r"[ -~]{1,255}")


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """The key a create runs under, and the hash of its request."""

    client_id: str
    key: str
    digest: str
    ttl_seconds: int

    @property
    def token(self) -> str:
        """The client, key and request hash as one hex SHA-256 (64 characters): what a
        rate limit counts once for concurrent retries (``RateLimits.hit_all``'s ``once``)."""
        return hashlib.sha256(f"{self.client_id}\0{self.key}\0{self.digest}".encode()).hexdigest()


class KeyTaken(Exception):
    """Another request with the key committed first (raised inside the create's
    transaction, which must roll back)."""


def request_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    if _KEY.fullmatch(key) is None:
        raise ProblemError(
            Code.INVALID_IDEMPOTENCY_KEY,
            "Idempotency-Key must be 1-255 printable ASCII characters.",
        )
    return key


async def earlier_answer(engine: AsyncEngine, claim: Claim) -> Replay | None:
    """The stored answer for the key (None when it is free); a 422 problem when the key
    was used with another body, a 409 for a legacy unanswered claim. An expired record
    is deleted here so the create can take the key."""
    async with engine.connect() as conn:
        row = await idempotency.find(conn, claim.client_id, claim.key)
    if row is None:
        return None
    if row.expires_at < utcnow():
        async with autocommit(engine) as conn:
            await idempotency.forget(conn, claim.client_id, claim.key, unanswered=False)
        return None
    return _existing(row, claim.digest)


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


async def take(conn: AsyncConnection, claim: Claim) -> None:
    """Insert the key's record in the create's transaction (first, before the hold);
    raises ``KeyTaken`` when another request's record is committed under the key."""
    now = utcnow()
    try:
        await idempotency.insert_claim(
            conn,
            claim.client_id,
            claim.key,
            claim.digest,
            created_at=now,
            expires_at=now + timedelta(seconds=claim.ttl_seconds),
        )
    except IntegrityError:
        raise KeyTaken from None


async def record(conn: AsyncConnection, claim: Claim, status: int, body: dict[str, Any]) -> None:
    """Store the create's answer in its own transaction: replays of the key get it."""
    await idempotency.answer(conn, claim.client_id, claim.key, status, body)
