"""Core ``Table`` handles for the SQLModel tables, so statements type-check."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from schemas.tables import (
    Account,
    ApiKey,
    CreditEntry,
    IdempotencyRecord,
    RuntimeConfigRow,
    VideoTask,
)

tasks = cast(Table, VideoTask.__table__)  # type: ignore[attr-defined]
accounts = cast(Table, Account.__table__)  # type: ignore[attr-defined]
entries = cast(Table, CreditEntry.__table__)  # type: ignore[attr-defined]
api_keys = cast(Table, ApiKey.__table__)  # type: ignore[attr-defined]
runtime_config = cast(Table, RuntimeConfigRow.__table__)  # type: ignore[attr-defined]
idempotency = cast(Table, IdempotencyRecord.__table__)  # type: ignore[attr-defined]
