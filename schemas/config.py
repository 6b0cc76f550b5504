"""Runtime configuration: edited through the admin API, read by API and workers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.catalogue import (
    DEFAULT_CATALOGUE,
    MODEL_ID_PATTERN,
    UNKNOWN_MODEL_PRICE,
    ModelSpec,
    find_model,
    is_write,
)
from schemas.fields import ApiKey, HttpUrl, NonNegativeInt32
from schemas.patch import Patch
from schemas.providers import ImplementedKind, UpstreamKind, implemented_kind

AmbiguousPolicy = Literal["fail", "resubmit"]


class ProviderAccess(BaseModel):
    """How to reach one provider other than the configured upstream: its base URL (empty:
    the provider's own, e.g. Google's for ``gemini``) and its key, ciphertext at rest
    (see core.secrets), never returned by the API."""

    base_url: str = ""
    api_key: str = ""


class ProviderAccessPatch(Patch):
    """One provider's access in ``PUT /v1/admin/config`` ``providers``: any subset. A new
    ``base_url`` without an ``api_key`` clears the stored key (it was meant for the old
    destination); ``api_key: ""`` clears it; the masked ``****…`` counts as left out."""

    base_url: HttpUrl | None = Field(default=None, max_length=500)
    api_key: ApiKey | None = None


# A rate limit: this many per its window (README, "Limits").
PerWindow = Annotated[int, Field(ge=1, le=1_000_000)]


class RuntimeConfig(BaseModel):
    enabled: bool = True
    upstream_kind: UpstreamKind = "simulator"
    upstream_base_url: str = "http://127.0.0.1:8090"
    # Ciphertext at rest (see core.secrets); never returned by the API.
    upstream_api_key: str = ""
    # The other providers the catalogue's models name, by kind (the configured upstream
    # is reached with the three fields above).
    providers: dict[UpstreamKind, ProviderAccess] = Field(default_factory=dict)
    default_text_model: str = "veo3"
    default_image_model: str = "veo3-pro-frames"
    default_enhance_prompt: bool = False
    default_price: NonNegativeInt32 = UNKNOWN_MODEL_PRICE
    models: list[ModelSpec] = Field(default_factory=lambda: list(DEFAULT_CATALOGUE))
    max_concurrent_tasks_per_user: int = Field(default=3, ge=1, le=10_000)
    task_timeout_seconds: int = Field(default=600, ge=10, le=7 * 24 * 3600)
    ambiguous_submit_policy: AmbiguousPolicy = "fail"
    # Limits (README, "Limits"), counted in Redis across replicas. Admin keys are exempt
    # from the per-client rate, so an operator can always reach this config.
    client_requests_per_minute: PerWindow = 3000
    user_creates_per_minute: PerWindow = 60
    replays_per_event_per_hour: PerWindow = 10
    replays_per_client_per_minute: PerWindow = 30
    failed_auth_per_minute_per_address: PerWindow = 60
    callbacks_per_minute_per_address: PerWindow = 1200

    @model_validator(mode="after")
    def _unique_models(self) -> RuntimeConfig:
        ids = [m.id for m in self.models]
        if len(ids) != len(set(ids)):
            raise ValueError("model ids in the catalogue must be unique")
        return self

    @model_validator(mode="after")
    def _defaults_usable(self, info: ValidationInfo) -> RuntimeConfig:
        """On write: the default models exist and make what they are the default for (a
        stored document of an earlier version is read as it is)."""
        if not is_write(info):
            return self
        text, image = self.model(self.default_text_model), self.model(self.default_image_model)
        if text is None or not text.text_to_video:
            raise ValueError(
                f"default_text_model {self.default_text_model!r} must be a text-to-video"
                " model of the catalogue"
            )
        if image is None or not image.image_to_video:
            raise ValueError(
                f"default_image_model {self.default_image_model!r} must be an image-to-video"
                " model of the catalogue"
            )
        return self

    @model_validator(mode="after")
    def _one_access_per_kind(self, info: ValidationInfo) -> RuntimeConfig:
        """On write: the configured upstream's kind is reached through ``upstream_*`` only,
        never also through ``providers`` (which would be used is not a guess to leave)."""
        if is_write(info) and self.upstream_kind in self.providers:
            raise ValueError(
                f"providers.{self.upstream_kind} duplicates the configured upstream: set its"
                " base URL and key with upstream_base_url and upstream_api_key"
            )
        return self

    def model(self, model_id: str) -> ModelSpec | None:
        return find_model(self.models, model_id)

    def price_of(self, model_id: str) -> int:
        spec = self.model(model_id)
        return spec.price if spec else self.default_price


class RuntimeConfigPatch(Patch):
    """What ``PUT /v1/admin/config`` accepts: any subset (a field left out keeps its value,
    ``null`` is refused; ``upstream_api_key: ""`` clears the key, which is write-only, and
    the masked ``****…`` a read shows counts as left out, so a read sent back is harmless).
    The merged document must pass the write checks (``RuntimeConfig``, ``ModelSpec``)."""

    enabled: bool | None = None
    upstream_kind: ImplementedKind | None = None
    upstream_base_url: HttpUrl | None = Field(default=None, max_length=500)
    upstream_api_key: ApiKey | None = None
    providers: dict[ImplementedKind, ProviderAccessPatch] | None = Field(
        default=None, max_length=16
    )
    default_text_model: str | None = Field(default=None, max_length=100, pattern=MODEL_ID_PATTERN)
    default_image_model: str | None = Field(default=None, max_length=100, pattern=MODEL_ID_PATTERN)
    default_enhance_prompt: bool | None = None
    default_price: NonNegativeInt32 | None = None
    models: list[ModelSpec] | None = Field(default=None, min_length=1, max_length=200)
    max_concurrent_tasks_per_user: int | None = Field(default=None, ge=1, le=10_000)
    task_timeout_seconds: int | None = Field(default=None, ge=10, le=7 * 24 * 3600)
    ambiguous_submit_policy: AmbiguousPolicy | None = None
    client_requests_per_minute: PerWindow | None = None
    user_creates_per_minute: PerWindow | None = None
    replays_per_event_per_hour: PerWindow | None = None
    replays_per_client_per_minute: PerWindow | None = None
    failed_auth_per_minute_per_address: PerWindow | None = None
    callbacks_per_minute_per_address: PerWindow | None = None

    @field_validator("models")
    @classmethod
    def _providers_implemented(cls, models: list[ModelSpec] | None) -> list[ModelSpec] | None:
        for spec in models or []:
            if spec.provider is not None:
                implemented_kind(spec.provider)
            for route in spec.routes:
                implemented_kind(route.provider)
        return models


class ProviderAccessOut(ProviderAccess):
    """One provider's access as ``/v1/admin/config`` shows it: the key masked."""

    api_key_set: bool
    api_key_unreadable: bool = False


class ConfigOut(RuntimeConfig):
    """The configuration as ``/v1/admin/config`` shows it: every key masked."""

    upstream_api_key_set: bool
    # True when a key is stored but this SECRET_KEY cannot decrypt it (a database restored
    # under another key): store the key again, or start with the key it was stored under.
    upstream_api_key_unreadable: bool = False
    providers: dict[str, ProviderAccessOut] = Field(  # type: ignore[assignment]
        default_factory=dict
    )


class UpstreamCandidate(Patch):
    """What ``POST /v1/admin/config/test`` accepts: an upstream to check before saving it.

    A field left out is taken from the stored configuration, with the rules of a write:
    a new ``upstream_base_url`` or ``upstream_kind`` without a key is checked with no key
    (the stored key was meant for the stored destination), and the masked ``****…`` a read
    shows counts as left out. ``{}`` checks the stored configuration. With ``provider``,
    the access stored for that provider is checked instead (``providers.<kind>``, or the
    configured upstream when it is of that kind), or a candidate ``upstream_base_url`` /
    ``upstream_api_key`` for it.
    """

    provider: ImplementedKind | None = None
    upstream_kind: ImplementedKind | None = None
    upstream_base_url: HttpUrl | None = Field(default=None, max_length=500)
    upstream_api_key: ApiKey | None = None

    @model_validator(mode="after")
    def _one_target(self) -> UpstreamCandidate:
        if self.provider is not None and self.upstream_kind is not None:
            raise ValueError("give provider or upstream_kind, not both")
        return self


# key_accepted: the provider authenticated the key (and created nothing); key_rejected:
# it refused the key (401/403, an exhausted quota included); unreachable: no answer (a
# refused connection, DNS, a timeout); unexpected: an answer that says neither.
# key_unreadable: the stored key cannot be decrypted with this SECRET_KEY (nothing sent).
CheckResult = Literal["key_accepted", "key_rejected", "unreachable", "unexpected", "key_unreadable"]


class ConnectionReport(BaseModel):
    """What one provider's connection check found. `status` is the HTTP status of the
    answer that decided it (None when none came); `detail` never carries the key."""

    model_config = ConfigDict(frozen=True)

    result: CheckResult
    latency_ms: int = Field(ge=0)
    status: int | None = None
    detail: str


class ConfigTestOut(ConnectionReport):
    """The answer of ``POST /v1/admin/config/test``: `ok` is ``result == "key_accepted"``;
    `base_url` is the one checked, without any credentials it held."""

    ok: bool
    provider: str
    base_url: str
