"""Infrastructure settings, read from the environment (prefix ``GOOGLE_VIDEO_``).

Runtime behaviour (prices, upstream, limits) lives in the database instead, see
``schemas.config.RuntimeConfig``; the upstream values here only seed it on first start.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal, get_args
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from schemas.providers import UpstreamKind
from schemas.secret_strength import DEV_SECRET_KEY, placeholder, weakness

__all__ = ["DEV_SECRET_KEY", "S3ChecksumAlgorithm", "Settings", "answer_cap"]

# S3's flexible checksum algorithms that AWS S3 ("Checking object integrity" in its User
# Guide), Cloudflare R2 and moto all implement. botocore computes the first three itself;
# CRC32C and CRC64NVME only with the awscrt package (botocore[crt]). AWS's newer SHA512,
# MD5 and XXHASH* are left out: neither R2 nor moto (the tests' store) implements them.
S3ChecksumAlgorithm = Literal["CRC32", "SHA1", "SHA256", "CRC32C", "CRC64NVME"]
NEEDS_AWSCRT = frozenset({"CRC32C", "CRC64NVME"})
DEFAULT_MAX_VIDEO_BYTES = 1 << 30
# The JSON around a video carried inline in an upstream answer: the operation's name, its
# keys, a safety-filter note -- a few hundred bytes in Google's answers; ample.
ANSWER_ENVELOPE_BYTES = 1 << 20


def answer_cap(inline_bytes: int) -> int:
    """The longest upstream API answer (submit, poll, check) a worker reads when the answer
    may carry `inline_bytes` as base64 (4 characters per 3 bytes) with
    `ANSWER_ENVELOPE_BYTES` of JSON around it: a video inline (Gemini's ``encodedVideo`` /
    ``bytesBase64Encoded``; the 1 GiB default ``MAX_VIDEO_BYTES`` gives 1,432,704,344
    bytes, 1.33 GiB), or the request a gateway echoes (``MAX_BODY_BYTES``)."""
    return 4 * -(-inline_bytes // 3) + ANSWER_ENVELOPE_BYTES


def url_passwords(name: str, url: str) -> dict[str, str | None]:
    """The passwords a database or Redis URL carries, decoded: in its userinfo and in a
    ``password`` query parameter (both drivers read either)."""
    parts = urlsplit(url)
    found: dict[str, str | None] = {name: unquote(parts.password) if parts.password else None}
    for n, value in enumerate(parse_qs(parts.query).get("password", []), start=1):
        found[f"{name} (password parameter {n})"] = value
    return found


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
    # Where clients download presigned URLs from, when it is not where this service
    # reaches the store (an internal hostname, a CDN in front of the bucket): only
    # presigned GET URLs are signed for it.
    s3_public_endpoint_url: str | None = None
    # None: path-style with a custom S3_ENDPOINT_URL (MinIO, IPs), boto3's choice otherwise.
    s3_addressing_style: Literal["auto", "path", "virtual"] | None = None
    # Empty: only the checksums S3 requires, as Content-MD5 (every S3-compatible store takes
    # them). An algorithm: S3's flexible checksums with it on every upload, for stores that
    # implement them (README, "S3-compatible stores").
    s3_checksum_algorithm: S3ChecksumAlgorithm | None = None
    admin_key: str | None = None
    # The base of the URLs this API gives its clients (``download_url``); nothing else.
    public_url: str | None = None
    # The base URL of this API *as the upstream reaches it*, for the gateway's
    # ``notify_hook`` callbacks; unset, no callback is asked for. Set it only to an address
    # the upstream can reach (an ingress, not a ClusterIP Service or localhost).
    callback_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    # Earlier SECRET_KEYs, comma-separated: still read (stored secrets, callback tokens)
    # until `google-video secrets reencrypt` has moved everything to the current one.
    secret_key_previous: str = ""
    upstream_kind: UpstreamKind = "simulator"
    upstream_base_url: str = "http://127.0.0.1:8090"
    upstream_api_key: str = ""
    # Google's Gemini API, for the catalogue's gemini models when the upstream above is of
    # another kind (seeds the runtime config's providers.gemini; empty: Google's own URL).
    gemini_base_url: str = ""
    gemini_api_key: str = ""
    # auto: one JSON object per line unless stderr is a terminal (core/logging.py).
    log_format: Literal["auto", "console", "json"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    db_pool_size: int = Field(default=20, ge=1, le=500)
    max_body_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    api_key_cache_seconds: float = Field(default=5.0, ge=0)
    idempotency_ttl_seconds: int = Field(default=48 * 3600, ge=24 * 3600)
    presign_seconds: int = Field(default=3600, gt=0)
    # How long an upload (POST /v1/uploads) can be used on a create before it expires.
    upload_ttl_seconds: int = Field(default=24 * 3600, ge=1)
    # How long task_activity rows (each task's timeline in the console) are kept; 0: forever.
    activity_retention_days: int = Field(default=30, ge=0, le=36500)
    # Worker pacing (seconds). Compressed in tests and in `google-video dev`.
    poll_first_delay: float = Field(default=10.0, ge=0)
    poll_min_interval: float = Field(default=2.0, gt=0)
    poll_max_interval: float = Field(default=30.0, gt=0)
    # Polls per task at most as many as fixed polling every this many seconds would make
    # on the learned durations (worker/schedule.py).
    poll_budget_interval: float = Field(default=10.0, gt=0)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    submit_max_tries: int = Field(default=6, ge=1)
    download_max_tries: int = Field(default=5, ge=1)
    # A stored video may not be larger (bytes). Veo makes clips of at most 8 s: tens of MB
    # even at 4K, so 1 GiB is ten times the largest real one, yet bounds what a runaway
    # download costs in storage and worker time (a few seconds on a LAN-speed store).
    # It also sets how much of an upstream's API answer a worker reads
    # (`upstream_answer_max_bytes`): Gemini may carry the video inline in its answer.
    max_video_bytes: int = Field(default=DEFAULT_MAX_VIDEO_BYTES, gt=0)
    worker_max_jobs: int = Field(default=200, ge=1)
    worker_drain_seconds: float = Field(default=20.0, ge=0)
    # The worker's /healthz and /readyz (worker/health.py); 0 serves none.
    worker_health_port: int = Field(default=0, ge=0, le=65535)
    worker_health_host: str = "0.0.0.0"
    # Each upstream API call (submit, poll, check) as a whole: waiting for a connection,
    # connecting, sending and the whole answer, however slowly it trickles.
    upstream_timeout_seconds: float = Field(default=30.0, gt=0)
    # The global upstream budget (README, "Upstream budget"): calls/s to each provider
    # kind by all workers together, 0 = none; per-kind overrides "gemini=2,gateway=20".
    upstream_rate_limit: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    upstream_rate_limits: str = ""
    upstream_rate_burst_seconds: float = Field(default=1.0, gt=0, allow_inf_nan=False)
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
    callback_min_interval_seconds: float = Field(default=1.0, ge=0)
    # With CALLBACK_URL set and callbacks seen arriving within CALLBACK_TRUST_SECONDS, poll
    # this many times less often: the callback reports the finish. Until one arrives (or
    # when they stop), polling keeps its full pace, so an unreachable CALLBACK_URL costs
    # nothing but the callbacks.
    callback_poll_factor: float = Field(default=4.0, ge=1)
    callback_trust_seconds: int = Field(default=3600, ge=1)
    reconcile_interval_seconds: int = Field(default=5, ge=1)
    reconcile_grace_seconds: float = Field(default=15.0, gt=0)
    # Slow clients (README, "Limits"): a request's headers must be complete this long
    # after the connection opens or its previous answer ends, its body this long after
    # its headers. Peers listed in FORWARDED_ALLOW_IPS (the proxy in front, uvicorn's
    # setting) are believed about X-Forwarded-For; anyone else is their TCP address.
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=60.0, gt=0)
    forwarded_allow_ips: str = "127.0.0.1"

    # --- Egress on a user's behalf (webhooks, remote images): core/egress ------------------
    # Hosts, addresses or CIDR networks egress may reach although not globally routable
    # (an intranet's receivers, tests), comma-separated: "10.20.0.0/16,hooks.corp.internal".
    egress_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Plain http:// targets; https:// only otherwise.
    egress_allow_http: bool = False
    # A PEM file of private CA certificates egress trusts besides the public ones (an
    # intranet's receivers and image hosts).
    egress_ca_file: str = ""
    # An https image input a provider needs as bytes (the Gemini API) is fetched within
    # this many seconds, redirects and all, at most 10 MB (core.images.MAX_IMAGE_BYTES).
    image_fetch_timeout_seconds: float = Field(default=20.0, gt=0)
    # Replaced by the two above; still set, it stops the start with a message saying so.
    webhook_allow_private: str | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("s3_checksum_algorithm", mode="before")
    @classmethod
    def _checksum_algorithm(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        name = value.strip()
        if not name:
            return None
        # ASCII case only: str.upper() also maps look-alikes (U+017F, a long s, to "S").
        name = name.upper() if name.isascii() else name
        usable = [a for a in get_args(S3ChecksumAlgorithm) if a not in NEEDS_AWSCRT or _awscrt()]
        if name in usable:
            return name
        if name in NEEDS_AWSCRT:
            raise ValueError(
                f"S3_CHECKSUM_ALGORITHM {name} needs the awscrt package (pip install "
                f"'botocore[crt]'); without it use {', '.join(usable)}, or leave it empty"
            )
        raise ValueError(
            f"S3_CHECKSUM_ALGORITHM {value.strip()!r} is none of {', '.join(usable)}"
            " (leave it empty for Content-MD5 only where S3 requires a checksum)"
        )

    @field_validator("egress_allow", mode="before")
    @classmethod
    def _egress_allow(cls, value: object) -> object:
        entries = value.split(",") if isinstance(value, str) else value
        if not isinstance(entries, list | tuple):
            return value
        return [_egress_entry(str(e)) for e in entries if str(e).strip()]

    @model_validator(mode="after")
    def _no_webhook_allow_private(self) -> Settings:
        if self.webhook_allow_private is not None:
            raise ValueError(
                "GOOGLE_VIDEO_WEBHOOK_ALLOW_PRIVATE is gone: list the hosts or CIDRs webhooks "
                "may reach in GOOGLE_VIDEO_EGRESS_ALLOW and set GOOGLE_VIDEO_EGRESS_ALLOW_HTTP="
                "true for plain http"
            )
        return self

    # --- end of egress ---------------------------------------------------------------------

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

    @field_validator("upstream_rate_limits")
    @classmethod
    def _rate_limits(cls, value: str) -> str:
        for item in value.split(","):
            kind, sep, rate = item.partition("=")
            if not item.strip():
                continue
            try:
                ok = bool(sep and kind.strip()) and 0 <= float(rate) < float("inf")
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"UPSTREAM_RATE_LIMITS: {item.strip()!r} is not kind=calls/s")
        return value

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'google-video.db'}"
        if not self.storage_url:
            self.storage_url = (self.data_dir.resolve() / "storage").as_uri()
        if self.environment == "production":
            problems = self._placeholder_problems()
            if problems:
                raise ValueError("; ".join(problems))
        return self

    def _placeholder_problems(self) -> list[str]:
        """What production refuses (schemas.secret_strength): weak generated secrets, and
        placeholders in the secrets others issue (S3, upstream, database and Redis)."""
        found = [
            f"GOOGLE_VIDEO_{name} {why}; use a long random value (openssl rand -hex 32)"
            for name, value in (("SECRET_KEY", self.secret_key), ("ADMIN_KEY", self.admin_key))
            if value is not None and (why := weakness(value)) is not None
        ]
        if self.admin_key is not None and self.admin_key == self.secret_key:
            found.append("GOOGLE_VIDEO_ADMIN_KEY equals GOOGLE_VIDEO_SECRET_KEY; use two values")
        issued = {
            "S3_ACCESS_KEY_ID": self.s3_access_key_id,
            "S3_SECRET_ACCESS_KEY": self.s3_secret_access_key,
            "UPSTREAM_API_KEY": self.upstream_api_key,
            "GEMINI_API_KEY": self.gemini_api_key,
            **url_passwords("DATABASE_URL", self.database_url),
            **url_passwords("REDIS_URL", self.redis_url),
        }
        found += [
            f"GOOGLE_VIDEO_{name} holds a placeholder or a value the project ships"
            for name, value in issued.items()
            if value and placeholder(value)
        ]
        return found

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """The current SECRET_KEY first, then the previous ones (newest first)."""
        previous = [k.strip() for k in self.secret_key_previous.split(",") if k.strip()]
        return (self.secret_key, *previous)

    @property
    def upstream_answer_max_bytes(self) -> int:
        """The longest upstream API answer a worker reads (`answer_cap` of
        `max_video_bytes`); a longer one is read no further and counts as an answer that
        is not JSON: a poll tries again later, a submit is ambiguous. A worker may hold
        about three times this per answer in flight (the bytes, the parsed text, the
        decoded video): lower ``MAX_VIDEO_BYTES`` to lower it."""
        return answer_cap(self.max_video_bytes)

    @property
    def upstream_plain_answer_max_bytes(self) -> int:
        """The longest API answer a worker reads from an upstream whose answers name the
        video by URL (the gateway protocol, UPSTREAM.md): the largest request the API
        takes (`max_body_bytes`, its images as base64 at 4/3) with `ANSWER_ENVELOPE_BYTES`,
        room for a gateway that echoes the request it was sent (27.7 MiB by default).
        Past it, as :attr:`upstream_answer_max_bytes`."""
        return answer_cap(self.max_body_bytes)

    @property
    def webhook_schedule(self) -> list[float]:
        return [float(x) for x in self.webhook_retry_schedule.split(",") if x.strip()]


def _awscrt() -> bool:
    """Whether the awscrt package is installed (looked up, not imported: botocore imports
    it itself and computes CRC32C and CRC64NVME with it)."""
    return importlib.util.find_spec("awscrt") is not None


HOST_NAME = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*$")


def _egress_entry(entry: str) -> str:
    """One ``EGRESS_ALLOW`` entry, normalised: a network as ``a.b.c.d/n`` (an address is
    a /32 or /128), a host name in lower case without the trailing dot."""
    entry = entry.strip()
    try:
        return str(ipaddress.ip_network(entry, strict=False))
    except ValueError:
        pass
    name = entry.lower().rstrip(".")
    if len(name) > 253 or not HOST_NAME.match(name):
        raise ValueError(f"EGRESS_ALLOW: {entry!r} is neither a host name, an address nor a CIDR")
    return name
