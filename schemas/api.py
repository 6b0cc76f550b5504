"""HTTP contracts: request bodies and the objects the API answers with."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.catalogue import ModelSpec

MAX_PROMPT = 2500
USER_PATTERN = r"^[A-Za-z0-9._:@+-]{1,200}$"


class VideoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    model: str | None = Field(default=None, max_length=100)
    images: list[str] | None = Field(default=None, max_length=8)
    enhance_prompt: bool | None = None
    user: str | None = Field(default=None, pattern=USER_PATTERN)
    seconds: Literal["4", "5", "6", "8"] | None = None
    # Checked against the chosen model's catalogue entry (schemas.catalogue.SIZES).
    size: Literal["1280x720", "1920x1080", "720x1280", "1080x1920"] | None = None
    aspect_ratio: Literal["16:9", "9:16"] | None = None
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    metadata: dict[str, str] | None = None
    webhook_url: str | None = Field(default=None, max_length=2000)

    _webhook_url = field_validator("webhook_url")(lambda v: _check_webhook_url(v))

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must not be blank")
        return value

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if len(value) > 16:
            raise ValueError("metadata holds at most 16 keys")
        for key, item in value.items():
            if not 1 <= len(key) <= 64 or len(item) > 512:
                raise ValueError("metadata keys are 1-64 characters, values at most 512")
        return value


class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    """The OpenAI Videos object, plus our extensions (after ``error``)."""

    id: str
    object: Literal["video"] = "video"
    model: str
    status: str
    progress: int
    created_at: int
    completed_at: int | None
    expires_at: int | None
    prompt: str
    seconds: str
    size: str
    remixed_from_video_id: str | None = None
    error: VideoError | None = None
    user: str
    task_type: str
    images: list[str]
    enhance_prompt: bool
    price: int
    metadata: dict[str, str]
    internal_status: str
    cancelled: bool
    download_url: str | None = None
    video_bytes: int | None = None
    video_sha256: str | None = None
    # Measured from the stored file once completed (None before).
    duration_ms: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    codec: str | None = None
    has_audio: bool | None = None


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


class ModelInfo(BaseModel):
    id: str
    object: Literal["model"] = "model"
    owned_by: str = "google"
    modes: list[str]
    max_images: int
    image_roles: list[str]
    price: int
    # What `size`, `aspect_ratio` and `seconds` may be for this model (empty: not choosable).
    sizes: list[str]
    aspect_ratios: list[str]
    seconds: list[str]

    @classmethod
    def of(cls, spec: ModelSpec) -> ModelInfo:
        modes = ["text_to_video"] if spec.text_to_video else []
        if spec.image_to_video:
            modes.append("image_to_video")
        return cls(
            id=spec.id,
            modes=modes,
            max_images=spec.max_images,
            image_roles=spec.role_labels(),
            price=spec.price,
            sizes=spec.sizes,
            aspect_ratios=list(spec.aspect_ratios),
            seconds=[str(d) for d in spec.durations],
        )


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    amount: int = Field(ge=-1_000_000_000, le=1_000_000_000)
    reason: str = Field(min_length=1, max_length=500)


class CreditEntryOut(BaseModel):
    id: int
    kind: str
    amount: int
    balance_after: int
    held_after: int
    task_id: str | None
    reason: str | None
    at: int


class CreditsOut(BaseModel):
    object: Literal["credits"] = "credits"
    user: str
    balance: int
    held: int
    entries: list[CreditEntryOut]
    has_more: bool


def _check_webhook_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("https://", "http://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000)
    enabled_events: list[Literal["video.completed", "video.failed", "video.cancelled"]] = Field(
        default_factory=list
    )
    description: str = Field(default="", max_length=500)

    _url = field_validator("url")(_check_webhook_url)


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=8, max_length=2000)
    enabled_events: list[Literal["video.completed", "video.failed", "video.cancelled"]] | None = (
        None
    )
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None

    _url = field_validator("url")(_check_webhook_url)


class EndpointOut(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    enabled_events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    created_at: int
    secret: str | None = None  # only in the answers that create or rotate it
