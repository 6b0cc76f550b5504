"""Core ``Table`` handles of the SQLModel tables, so statements type-check.

Only the repositories in this package import them: SQL lives nowhere else.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from schemas.tables import (
    Account,
    ApiKey,
    ClientSecret,
    CreditEntry,
    Delivery,
    DeliveryAttempt,
    Event,
    IdempotencyRecord,
    ImageUpload,
    RuntimeConfigRow,
    TaskActivity,
    VideoTask,
    WebhookEndpoint,
)

tasks = cast(Table, VideoTask.__table__)  # type: ignore[attr-defined]
accounts = cast(Table, Account.__table__)  # type: ignore[attr-defined]
entries = cast(Table, CreditEntry.__table__)  # type: ignore[attr-defined]
api_keys = cast(Table, ApiKey.__table__)  # type: ignore[attr-defined]
runtime_config = cast(Table, RuntimeConfigRow.__table__)  # type: ignore[attr-defined]
idempotency = cast(Table, IdempotencyRecord.__table__)  # type: ignore[attr-defined]

webhook_endpoints = cast(Table, WebhookEndpoint.__table__)  # type: ignore[attr-defined]
client_secrets = cast(Table, ClientSecret.__table__)  # type: ignore[attr-defined]
events = cast(Table, Event.__table__)  # type: ignore[attr-defined]
deliveries = cast(Table, Delivery.__table__)  # type: ignore[attr-defined]
delivery_attempts = cast(Table, DeliveryAttempt.__table__)  # type: ignore[attr-defined]
uploads = cast(Table, ImageUpload.__table__)  # type: ignore[attr-defined]
activity = cast(Table, TaskActivity.__table__)  # type: ignore[attr-defined]
