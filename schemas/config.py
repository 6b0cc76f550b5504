"""Runtime configuration: edited through the admin API, read by API and workers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from schemas.catalogue import DEFAULT_CATALOGUE, UNKNOWN_MODEL_PRICE, ModelSpec, find_model
from schemas.providers import ImplementedKind, UpstreamKind, implemented_kind

AmbiguousPolicy = Literal["fail", "resubmit"]


class RuntimeConfig(BaseModel):
    enabled: bool = True
    upstream_kind: UpstreamKind = "simulator"
    upstream_base_url: str = "http://127.0.0.1:8090"
    # Ciphertext at rest (see core.secrets); never returned by the API.
    upstream_api_key: str = ""
    default_text_model: str = "veo3"
    default_image_model: str = "veo3-pro-frames"
    default_enhance_prompt: bool = False
    default_price: int = Field(default=UNKNOWN_MODEL_PRICE, ge=0)
    models: list[ModelSpec] = Field(default_factory=lambda: list(DEFAULT_CATALOGUE))
    max_concurrent_tasks_per_user: int = Field(default=3, ge=1, le=10_000)
    task_timeout_seconds: int = Field(default=600, ge=10, le=7 * 24 * 3600)
    ambiguous_submit_policy: AmbiguousPolicy = "fail"

    @model_validator(mode="after")
    def _unique_models(self) -> RuntimeConfig:
        ids = [m.id for m in self.models]
        if len(ids) != len(set(ids)):
            raise ValueError("model ids in the catalogue must be unique")
        return self

    def model(self, model_id: str) -> ModelSpec | None:
        return find_model(self.models, model_id)

    def price_of(self, model_id: str) -> int:
        spec = self.model(model_id)
        return spec.price if spec else self.default_price


class RuntimeConfigPatch(BaseModel):
    """What ``PUT /v1/admin/config`` accepts: any subset; the key is write-only."""

    model_config = {"extra": "forbid"}

    enabled: bool | None = None
    upstream_kind: ImplementedKind | None = None
    upstream_base_url: str | None = Field(default=None, max_length=500)
    upstream_api_key: str | None = Field(default=None, max_length=500)
    default_text_model: str | None = None
    default_image_model: str | None = None
    default_enhance_prompt: bool | None = None
    default_price: int | None = Field(default=None, ge=0)
    models: list[ModelSpec] | None = None
    max_concurrent_tasks_per_user: int | None = Field(default=None, ge=1, le=10_000)
    task_timeout_seconds: int | None = Field(default=None, ge=10, le=7 * 24 * 3600)
    ambiguous_submit_policy: AmbiguousPolicy | None = None

    @field_validator("models")
    @classmethod
    def _providers_implemented(cls, models: list[ModelSpec] | None) -> list[ModelSpec] | None:
        for spec in models or []:
            if spec.provider is not None:
                implemented_kind(spec.provider)
        return models
