"""Infrastructure settings, read from the environment (prefix ``GOOGLE_VIDEO_``).

Runtime behaviour (prices, upstream, limits) lives in the database instead, see
``schemas.config.RuntimeConfig``; the upstream values here only seed it on first start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.providers import UpstreamKind

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev", "development"})
# A published placeholder: production refuses it (see the validator below).
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GOOGLE_VIDEO_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path(".data")
    database_url: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    storage_url: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    admin_key: str | None = None
    public_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    upstream_kind: UpstreamKind = "simulator"
    upstream_base_url: str = "http://127.0.0.1:8090"
    upstream_api_key: str = ""
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    db_pool_size: int = Field(default=20, ge=1, le=500)
    max_body_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    api_key_cache_seconds: float = Field(default=5.0, ge=0)
    idempotency_ttl_seconds: int = Field(default=48 * 3600, ge=24 * 3600)
    presign_seconds: int = Field(default=3600, gt=0)
    # Worker pacing (seconds). Compressed in tests and in `google-video dev`.
    poll_first_delay: float = Field(default=10.0, ge=0)
    poll_min_interval: float = Field(default=2.0, gt=0)
    poll_max_interval: float = Field(default=30.0, gt=0)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    submit_max_tries: int = Field(default=6, ge=1)
    download_max_tries: int = Field(default=5, ge=1)
    worker_max_jobs: int = Field(default=200, ge=1)
    worker_drain_seconds: float = Field(default=20.0, ge=0)
    upstream_timeout_seconds: float = Field(default=30.0, gt=0)
    # Upstream tolerance (README, "Upstream behaviour"). A Retry-After above the cap is
    # cut to it (and never past the task's deadline).
    upstream_retry_after_max_seconds: float = Field(default=300.0, ge=0)
    # `task_not_exist` this soon after the submit is the gateway's replication lag.
    task_not_found_grace_seconds: float = Field(default=60.0, ge=0)
    # SUCCESS without a video URL: this many more polls (POLL_MIN_INTERVAL apart).
    no_video_grace_polls: int = Field(default=5, ge=0)
    # The upstream refused the key or account: one error log per worker per interval.
    operator_alert_interval_seconds: float = Field(default=60.0, gt=0)
    # Seconds between delivery attempts after the first (immediate) one: ~3.2 days.
    webhook_retry_schedule: str = "5,300,1800,7200,18000,36000,36000,36000,36000,36000,36000,36000"
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    # Deliveries to loopback/private addresses are refused unless this is set (tests, dev).
    webhook_allow_private: bool = False
    callback_min_interval_seconds: float = Field(default=1.0, ge=0)
    # With PUBLIC_URL set, poll this many times less often: the callback reports the finish.
    callback_poll_factor: float = Field(default=4.0, ge=1)
    reconcile_interval_seconds: int = Field(default=5, ge=1)
    reconcile_grace_seconds: float = Field(default=15.0, gt=0)
    # Slow clients (README, "Limits"): a request's headers must be complete this long
    # after the connection opens or its previous answer ends, its body this long after
    # its headers. Peers listed in FORWARDED_ALLOW_IPS (the proxy in front, uvicorn's
    # setting) are believed about X-Forwarded-For; anyone else is their TCP address.
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=60.0, gt=0)
    forwarded_allow_ips: str = "127.0.0.1"

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        try:
            steps = [float(x) for x in value.split(",") if x.strip()]
        except ValueError:
            raise ValueError("WEBHOOK_RETRY_SCHEDULE is comma-separated seconds") from None
        if not steps or any(step < 0 for step in steps):
            raise ValueError("WEBHOOK_RETRY_SCHEDULE needs at least one non-negative delay")
        return value

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'google-video.db'}"
        if not self.storage_url:
            self.storage_url = (self.data_dir.resolve() / "storage").as_uri()
        if self.environment == "production":
            weak = self.secret_key in PLACEHOLDER_SECRETS or self.secret_key == DEV_SECRET_KEY
            if weak or len(self.secret_key) < 16:
                raise ValueError(
                    "GOOGLE_VIDEO_SECRET_KEY must be set to a real secret in production"
                )
            if self.admin_key is not None and (
                self.admin_key in PLACEHOLDER_SECRETS or len(self.admin_key) < 16
            ):
                raise ValueError("GOOGLE_VIDEO_ADMIN_KEY is a placeholder; use a long random key")
        return self

    @property
    def webhook_schedule(self) -> list[float]:
        return [float(x) for x in self.webhook_retry_schedule.split(",") if x.strip()]
