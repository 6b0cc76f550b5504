"""Database tables (SQLModel). The single definition of every column and constraint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from schemas.catalogue import UNKNOWN_MODEL_PRICE
from schemas.clock import utcnow
from schemas.status import DeliveryStatus, StorageStatus, TaskStatus


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way out, whatever the backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _now_ts() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


class VideoTask(SQLModel, table=True):
    __tablename__ = "video_tasks"
    __table_args__ = (
        Index("ix_video_tasks_client_id_id", "client_id", "id"),
        Index("ix_video_tasks_client_user_status", "client_id", "user", "status"),
        Index("ix_video_tasks_status_next_attempt", "status", "next_attempt_at"),
        # The console: a user's videos across clients; the completions of the last hour.
        Index("ix_video_tasks_user_id", "user", "id"),
        Index("ix_video_tasks_completed_at", "completed_at"),
        CheckConstraint("price >= 0", name="ck_video_tasks_price"),
        CheckConstraint("progress >= 0 AND progress <= 100", name="ck_video_tasks_progress"),
    )

    id: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=100)
    user: str = Field(max_length=200)
    task_type: str = Field(max_length=20)
    status: str = Field(default=TaskStatus.QUEUED, max_length=20)
    upstream_task_id: str | None = Field(default=None, max_length=1000)
    upstream_action: str | None = Field(default=None, max_length=100)
    # The route (``kind:provider_model``) the task was last submitted on: it polls and
    # downloads there (the catalogue's routes; README, "Routing and failover").
    upstream_route: str | None = Field(default=None, max_length=150)
    model: str = Field(max_length=100)
    prompt: str
    enhance_prompt: bool = False
    aspect_ratio: str | None = Field(default=None, max_length=10)
    # What the model was asked to make (validated against the catalogue at create).
    resolution: str | None = Field(default=None, max_length=10)
    duration_seconds: int | None = None
    seed: int | None = None
    images: list[str] = _json(list)
    input_refs: list[str] = _json(list)
    upstream_submit_time: datetime | None = _ts()
    upstream_start_time: datetime | None = _ts()
    upstream_finish_time: datetime | None = _ts()
    progress: int = 0
    upstream_video_url: str | None = None
    video_key: str | None = Field(default=None, max_length=300)
    # Bytes; BIGINT: a video may exceed 2 GiB (an INTEGER column refuses it on PostgreSQL).
    video_size: int | None = Field(default=None, sa_column=Column(BigInteger(), nullable=True))
    video_sha256: str | None = Field(default=None, max_length=64)
    # Measured from the stored file (not what was asked for).
    video_duration_ms: int | None = None
    video_width: int | None = None
    video_height: int | None = None
    video_fps: float | None = None
    video_codec: str | None = Field(default=None, max_length=32)
    video_has_audio: bool | None = None
    thumbnail_key: str | None = Field(default=None, max_length=300)
    spritesheet_key: str | None = Field(default=None, max_length=300)
    storage_status: str = Field(default=StorageStatus.PENDING, max_length=20)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = None
    price: int = UNKNOWN_MODEL_PRICE
    request_snapshot: dict[str, Any] = _json(dict)
    upstream_response: dict[str, Any] = _json(dict)
    meta: dict[str, str] = Field(
        default_factory=dict, sa_column=Column("metadata", JSON, nullable=False)
    )
    webhook_url: str | None = None
    # The X-Request-ID of the create: the worker's log lines and the webhook carry it.
    request_id: str | None = Field(default=None, max_length=64)
    polls: int = 0
    submit_attempts: int = 0
    store_attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = _now_ts()
    updated_at: datetime = _now_ts()
    completed_at: datetime | None = _ts()
    deleted_at: datetime | None = _ts()
    next_attempt_at: datetime | None = _ts()


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="ck_accounts_balance"),
        CheckConstraint("held >= 0", name="ck_accounts_held"),
    )

    client_id: str = Field(primary_key=True, max_length=100)
    user: str = Field(primary_key=True, max_length=200)
    balance: int = 0
    held: int = 0
    # How many of the user's tasks are active (not terminal): raised by the create's
    # conditional UPDATE, lowered by the settlement that ends one (core.repo.credits).
    active_tasks: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    updated_at: datetime = _now_ts()


class CreditEntry(SQLModel, table=True):
    """Append-only ledger. ``settles`` is the task id on a capture or release and NULL
    otherwise; its UNIQUE constraint makes a second settlement of a task impossible."""

    __tablename__ = "credit_entries"
    __table_args__ = (
        UniqueConstraint("task_id", "kind", name="uq_credit_entries_task_kind"),
        UniqueConstraint("settles", name="uq_credit_entries_settles"),
        CheckConstraint(
            "kind IN ('grant', 'hold', 'capture', 'release', 'adjust')",
            name="ck_credit_entries_kind",
        ),
        CheckConstraint(
            "(kind IN ('capture', 'release')) = (settles IS NOT NULL)",
            name="ck_credit_entries_settles_kind",
        ),
        CheckConstraint(
            "settles IS NULL OR settles = task_id", name="ck_credit_entries_settles_task"
        ),
        CheckConstraint(
            "(kind IN ('hold', 'capture', 'release')) = (task_id IS NOT NULL)",
            name="ck_credit_entries_task",
        ),
        CheckConstraint("balance_after >= 0", name="ck_credit_entries_balance_after"),
        Index("ix_credit_entries_account", "client_id", "user", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=100)
    user: str = Field(max_length=200)
    task_id: str | None = Field(default=None, max_length=64)
    settles: str | None = Field(default=None, max_length=64)
    kind: str = Field(max_length=10)
    amount: int
    balance_after: int
    held_after: int
    reason: str | None = Field(default=None, max_length=500)
    at: datetime = _now_ts()


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    client_id: str = Field(max_length=100, index=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=20)
    key_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    role: str = Field(max_length=10)
    created_at: datetime = _now_ts()
    last_used_at: datetime | None = _ts()
    revoked_at: datetime | None = _ts()


class RuntimeConfigRow(SQLModel, table=True):
    """One row (id = 1). ``document`` is a ``schemas.config.RuntimeConfig`` as JSON; the
    upstream key inside it is encrypted with the service secret."""

    __tablename__ = "runtime_config"

    id: int = Field(default=1, primary_key=True)
    version: int = 1
    document: dict[str, Any] = _json(dict)
    updated_at: datetime = _now_ts()


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_records"

    client_id: str = Field(primary_key=True, max_length=100)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    response_status: int | None = None
    response_body: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = _now_ts()
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


class WebhookEndpoint(SQLModel, table=True):
    """Where a client wants events. Secrets are encrypted with the service secret."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_client", "client_id", "id"),)

    id: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=100)
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=500)
    enabled_events: list[str] = _json(list)
    secret: str
    previous_secret: str | None = None
    previous_secret_expires_at: datetime | None = _ts()
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = _now_ts()
    updated_at: datetime = _now_ts()
    deleted_at: datetime | None = _ts()


class ClientSecret(SQLModel, table=True):
    """Per-client signing secret for per-request ``webhook_url`` deliveries."""

    __tablename__ = "client_secrets"

    client_id: str = Field(primary_key=True, max_length=100)
    secret: str
    previous_secret: str | None = None
    previous_secret_expires_at: datetime | None = _ts()
    created_at: datetime = _now_ts()


class Event(SQLModel, table=True):
    """An outbox row, written in the transaction that ended the task. ``body`` holds the
    exact bytes every delivery sends (signatures cover them)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_client_id", "client_id", "id"),
        UniqueConstraint("task_id", "type", name="uq_events_task_type"),
    )

    id: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=100)
    type: str = Field(max_length=40)
    task_id: str = Field(max_length=64)
    body: str
    created_at: datetime = _now_ts()


class Delivery(SQLModel, table=True):
    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_event", "event_id"),
    )

    id: str = Field(primary_key=True, max_length=64)
    event_id: str = Field(max_length=64)
    client_id: str = Field(max_length=100)
    endpoint_id: str | None = Field(default=None, max_length=64)
    url: str = Field(max_length=2000)
    status: str = Field(default=DeliveryStatus.PENDING, max_length=20)
    attempts: int = 0
    next_attempt_at: datetime | None = _ts()
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = _now_ts()
    delivered_at: datetime | None = _ts()


class DeliveryAttempt(SQLModel, table=True):
    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_delivery", "delivery_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(max_length=64)
    at: datetime = _now_ts()
    status_code: int | None = None
    latency_ms: int
    error: str | None = Field(default=None, max_length=500)


class TaskActivity(SQLModel, table=True):
    """Append-only history of one task (the operator console's timeline): each state
    transition, upstream submit call and poll, with ``detail`` a small JSON object of what
    was seen (``core/repo/activity.py`` names its keys). Kept ``ACTIVITY_RETENTION_DAYS``
    (the worker's hourly ``purge_activity``)."""

    __tablename__ = "task_activity"
    __table_args__ = (Index("ix_task_activity_task", "task_id", "id"),)

    # 64-bit: a row per poll outgrows 2^31 long before the tasks do (SQLite's rowid is).
    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    task_id: str = Field(max_length=64)
    at: datetime = _now_ts()
    kind: str = Field(max_length=10)
    detail: dict[str, Any] = _json(dict)


class ImageUpload(SQLModel, table=True):
    """An image a client uploaded (``POST /v1/uploads``) to use on its creates until
    ``expires_at``; a create copies the bytes into the video's own inputs, so the object
    under ``key`` can go at expiry whatever used it."""

    __tablename__ = "uploads"
    __table_args__ = (
        Index("ix_uploads_client_id_id", "client_id", "id"),
        CheckConstraint("size >= 0", name="ck_uploads_size"),
    )

    id: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=100)
    key: str = Field(max_length=300)
    size: int
    mime_type: str = Field(max_length=20)
    width: int
    height: int
    sha256: str = Field(max_length=64)
    created_at: datetime = _now_ts()
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
