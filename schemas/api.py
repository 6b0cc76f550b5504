"""HTTP contracts: request bodies, query and path parameters, and the objects the API
answers with. The same models validate requests and make ``/openapi.json``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from schemas.catalogue import (
    DEFAULT_CATALOGUE,
    MODEL_ID_PATTERN,
    ModelSpec,
    PersonGeneration,
    RoleName,
)
from schemas.fields import (
    ASCII_DIGITS,
    CALLBACK_TOKEN,
    INT32_MAX,
    NO_NUL,
    ONE_LINE,
    ClientName,
    HttpUrl,
    Line,
    Reason,
    Text,
    UserName,
    at_most,
    issued_id,
)
from schemas.patch import Patch
from schemas.shapes import AspectRatio, SecondsText, Size
from schemas.status import EventType, PublicStatus

MAX_PROMPT = 2500
MAX_METADATA_KEYS = 16
EVENT_TYPES = Literal["video.completed", "video.failed", "video.cancelled"]

MetadataKey = Annotated[Line, Field(min_length=1, max_length=64)]
MetadataValue = Annotated[Text, Field(max_length=512)]
# Documented by hand: pydantic would render the key pattern as patternProperties, which
# leaves other keys unconstrained in the document.
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    Field(max_length=MAX_METADATA_KEYS),
    # Counted before the pairs are checked: a body of 100,000 pairs is one error, not
    # 100,000 (pydantic checks a dict's length after its items).
    BeforeValidator(at_most(MAX_METADATA_KEYS, "metadata holds at most 16 pairs")),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_METADATA_KEYS,
            "propertyNames": {"minLength": 1, "maxLength": 64, "pattern": ONE_LINE},
            "additionalProperties": {"type": "string", "maxLength": 512, "pattern": NO_NUL},
        }
    ),
]
# A data URI of a 10 MB image is about 14 MB of base64; the body limit bounds it first.
ImageRef = Annotated[Text, Field(min_length=1)]
ModelId = Annotated[str, Field(min_length=1, max_length=100, pattern=MODEL_ID_PATTERN)]
UploadId = Annotated[str, issued_id("upload")]


class InputReference(Patch):
    """The OpenAI Videos ``input_reference`` given as JSON: one image, by ``file_id`` (an
    ``upload_…`` id from ``POST /v1/uploads``) or by ``image_url`` (as an ``images`` entry).
    It follows the ``images`` (a multipart ``input_reference`` is a file instead)."""

    file_id: UploadId | None = None
    image_url: ImageRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> InputReference:
        if (self.file_id is None) == (self.image_url is None):
            raise ValueError("input_reference takes exactly one of file_id and image_url")
        return self

    @property
    def ref(self) -> str:
        """The reference as an ``images`` entry."""
        return self.file_id or self.image_url or ""


def _offered(values: Callable[[ModelSpec], list[str]]) -> list[str]:
    """What the default catalogue's models offer, as examples of a create field."""
    offered = {value for spec in DEFAULT_CATALOGUE for value in values(spec)}
    return sorted(offered, key=lambda value: (len(value), value))  # "8" before "10"


class VideoCreate(BaseModel):
    """``POST /v1/videos`` (JSON, or the same fields as multipart/form-data, which the
    form reader turns into these types first)."""

    # Strict: a JSON body carries exactly the documented types (no 0 for false, no "12"
    # for 12), so the document and the validation agree.
    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: Text = Field(min_length=1, max_length=MAX_PROMPT)
    # Absent: the runtime config's default for text or image input; "" is refused.
    model: ModelId | None = None
    images: list[ImageRef] | None = Field(
        default=None,
        max_length=8,
        description="https:// URLs, data:image/(png|jpeg|webp);base64 URIs (10 MB each)"
        " or upload ids (upload_…, from POST /v1/uploads)",
    )
    input_reference: InputReference | None = None
    enhance_prompt: bool | None = None
    user: UserName | None = None
    # Of the kinds a catalogue entry offers (schemas.shapes): what a model can honour is
    # its entry's to say (GET /v1/models; a value it cannot is a 400 unsupported_parameter
    # naming the model and what it accepts).
    seconds: SecondsText | None = Field(
        default=None,
        description="1 to 600, as the model offers (GET /v1/models `seconds`).",
        examples=_offered(lambda spec: [str(d) for d in spec.durations]),
    )
    size: Size | None = Field(
        default=None,
        description="WIDTHxHEIGHT, as the model offers (GET /v1/models `sizes`).",
        examples=_offered(lambda spec: spec.sizes),
    )
    aspect_ratio: AspectRatio | None = Field(
        default=None,
        description="W:H, as the model offers (GET /v1/models `aspect_ratios`).",
        examples=_offered(lambda spec: spec.aspect_ratios),
    )
    # Stored in an INTEGER column: 0 to 2**31 - 1.
    seed: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None
    # Where the model takes them (its catalogue entry; GET /v1/models `parameters`).
    negative_prompt: Text | None = Field(default=None, min_length=1, max_length=MAX_PROMPT)
    person_generation: PersonGeneration | None = None
    image_roles: list[RoleName] | None = Field(
        default=None,
        max_length=8,
        description="The role of each image, in order (images, then input_reference, then"
        " uploaded files): the model's positional roles, or only `reference` on a model"
        " with `reference_images`. Without it, images take the model's positional roles.",
    )
    metadata: Metadata | None = None
    webhook_url: HttpUrl | None = None

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must not be blank")
        return value


class Upload(BaseModel):
    """An uploaded image (``POST /v1/uploads``), usable in ``images`` (or as
    ``input_reference.file_id``) of the same client's creates until ``expires_at``."""

    id: str
    object: Literal["upload"] = "upload"
    bytes: int
    mime_type: Literal["image/png", "image/jpeg", "image/webp"]
    width: int
    height: int
    created_at: int
    expires_at: int


class UploadDeleted(BaseModel):
    id: str
    object: Literal["upload.deleted"] = "upload.deleted"
    deleted: bool = True


class UploadForm(BaseModel):
    """``POST /v1/uploads`` (multipart/form-data): one part, ``file``, with a filename."""

    file: Annotated[
        bytes,
        WithJsonSchema(
            {
                "type": "string",
                "format": "binary",
                "contentMediaType": "image/*",
                "description": "One PNG, JPEG or WebP image (by its bytes, not its name"
                " or type): at most 10 MB, 64 to 8192 pixels a side, at most 40"
                " megapixels, not animated, decodable to the last pixel.",
            }
        ),
    ]


class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    """The OpenAI Videos object, plus our extensions (after ``error``)."""

    id: str
    object: Literal["video"] = "video"
    model: str
    status: PublicStatus
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
    # Admins only (absent for clients): the route, ``provider:model``, the video was
    # submitted on (the catalogue's routes; README, "Routing and failover").
    upstream_route: str | None = Field(default=None, exclude=True)


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
    # How each image is used, by position, as people read it ("first frame").
    image_roles: list[str]
    # The same roles as a create's `image_roles` names them ("first_frame").
    image_role_names: list[str]
    price: int
    # What `size`, `aspect_ratio` and `seconds` may be for this model (empty: not choosable).
    sizes: list[str]
    aspect_ratios: list[str]
    seconds: list[str]
    # The optional create fields the model honours (any other given is a 400).
    parameters: list[str]
    # Up to this many `reference` images instead of the positional roles (image_roles).
    reference_images: int
    person_generation: list[str]
    # Made only at the model's longest `seconds`: "1080p", "reference_images".
    longest_seconds_only: list[str]

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
            image_role_names=[role.value for role in spec.image_roles],
            price=spec.price,
            sizes=spec.sizes,
            aspect_ratios=list(spec.aspect_ratios),
            seconds=[str(d) for d in spec.durations],
            parameters=spec.parameters,
            reference_images=spec.reference_images,
            person_generation=list(spec.person_generation),
            longest_seconds_only=list(spec.longest_seconds_only),
        )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelInfo]


class Grant(BaseModel):
    """``POST /v1/credits/{user}/grants``: ``amount`` credits (negative adjusts down)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    amount: int = Field(ge=-1_000_000_000, le=1_000_000_000)
    reason: Reason


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


KeyName = Annotated[Line, Field(min_length=1, max_length=100)]
KeyRole = Literal["client", "admin"]
_CLIENT_ID: TypeAdapter[str] = TypeAdapter(ClientName)


class KeyCreate(BaseModel):
    """``POST /v1/admin/keys`` (and ``google-video keys create``): a key for ``client``,
    or, without it, for a new client named like the key (admin keys act for ``admin``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: KeyName
    role: KeyRole = "client"
    client: ClientName | None = Field(
        default=None,
        description="An existing or new client the key acts for; left out, a client key"
        " makes a new client named like the key.",
    )

    @model_validator(mode="after")
    def _name_is_a_client_id(self) -> KeyCreate:
        if self.role == "client" and self.client is None:
            try:
                _CLIENT_ID.validate_python(self.name)
            except ValidationError:
                raise ValueError(
                    "without 'client' the key makes a new client named like the key, so the"
                    " name must be a client id (1-100 characters of [A-Za-z0-9._:@+-], not"
                    " only dots); or name the client"
                ) from None
        return self


class ApiKeyOut(BaseModel):
    """An API key as the admin sees it: never its hash, its secret only when created."""

    id: str
    object: Literal["api_key"] = "api_key"
    prefix: str = Field(description="The key's first characters, to recognise it.")
    client: str
    name: str
    role: KeyRole
    created_at: int
    last_used_at: int | None
    revoked_at: int | None
    key: str | None = Field(
        default=None, description="The key itself: only in the answer that creates it."
    )


class ApiKeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ApiKeyOut]


class KeyRevoked(BaseModel):
    id: str
    object: Literal["api_key.revoked"] = "api_key.revoked"
    revoked: bool = True


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: HttpUrl
    enabled_events: list[EVENT_TYPES] = Field(default_factory=list, max_length=3)
    description: Line = Field(default="", max_length=500)


class EndpointPatch(Patch):
    """Any subset of the fields; ``enabled: true`` also clears ``disabled_reason``."""

    url: HttpUrl | None = None
    enabled_events: list[EVENT_TYPES] | None = Field(default=None, max_length=3)
    description: Line | None = Field(default=None, max_length=500)
    enabled: bool | None = None


class EndpointOut(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    enabled_events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    created_at: int
    secret: str | None = Field(
        default=None, description="Only in the answers that create or rotate it."
    )


class EndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EndpointOut]


class EndpointDeleted(BaseModel):
    id: str
    object: Literal["webhook_endpoint.deleted"] = "webhook_endpoint.deleted"
    deleted: bool = True


class WebhookSecret(BaseModel):
    object: Literal["webhook_secret"] = "webhook_secret"
    secret: str


class EventOut(BaseModel):
    """A webhook event: exactly the body every delivery of it sends."""

    id: str
    object: Literal["event"] = "event"
    created_at: int
    type: EventType
    data: Video


class AttemptOut(BaseModel):
    at: int | None
    status_code: int | None
    latency_ms: int
    error: str | None


class DeliveryOut(BaseModel):
    id: str
    endpoint_id: str | None
    url: str
    status: str
    attempts: int
    next_attempt_at: int | None
    delivered_at: int | None
    last_status_code: int | None
    attempt_log: list[AttemptOut]


class EventDetail(EventOut):
    """An event with one page of its deliveries, oldest first (``limit``, ``after``)."""

    deliveries: list[DeliveryOut]
    deliveries_has_more: bool


class EventList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EventOut]
    has_more: bool


class CallbackAck(BaseModel):
    status: Literal["accepted", "ignored"]
    reason: str | None = None


class Health(BaseModel):
    status: Literal["ok"]


class ServiceIndex(BaseModel):
    """``GET /``: what this is and where to go next (paths relative to the host)."""

    service: Literal["google-video"] = "google-video"
    version: str
    links: dict[str, str]


class Readiness(BaseModel):
    """``ok``: every dependency answers; ``degraded``: the pod still serves (Redis or
    storage is down); ``unavailable``: the database is down (HTTP 503)."""

    status: Literal["ok", "degraded", "unavailable"]
    checks: dict[str, str]
    degraded: list[str] = Field(
        default_factory=list, description="Every failing dependency, by name."
    )


class ProblemErrorObject(BaseModel):
    """The OpenAI-style ``error`` member, so SDKs show the message."""

    message: str
    type: str
    code: str


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; ``code`` is stable (README, "Problem codes")."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    code: str
    detail: str
    error: ProblemErrorObject
    errors: list[FieldError] | None = None


# --- parameters --------------------------------------------------------------------------

Limit = Annotated[int, Field(ge=1, le=100), ASCII_DIGITS, Field(description="1 to 100.")]
Order = Literal["asc", "desc"]
VideoId = Annotated[str, issued_id("video")]
EventId = Annotated[str, issued_id("evt")]
DeliveryId = Annotated[str, issued_id("dlv")]
EndpointId = Annotated[str, issued_id("whep")]


class Query(BaseModel):
    """Query parameters: unknown ones are ignored (browsers and SDKs add their own)."""

    model_config = ConfigDict(extra="ignore")


class VideoListQuery(Query):
    limit: Limit = 20
    order: Order = "desc"
    after: VideoId | None = Field(default=None, description="The last id of the previous page.")
    user: UserName | None = None
    status: PublicStatus | None = None


class ContentQuery(Query):
    variant: Literal["video", "thumbnail", "spritesheet"] = "video"
    redirect: Literal["0", "1"] = Field(
        default="1", description="0: stream the file even where a presigned URL exists."
    )


class CreditsQuery(Query):
    limit: Limit = 20
    before: Annotated[int, Field(ge=1, le=INT32_MAX), ASCII_DIGITS] | None = Field(
        default=None, description="Entries older than this entry id."
    )
    client: ClientName | None = Field(default=None, description="Admins: another client.")


class KeyListQuery(Query):
    include_revoked: Literal["true", "false"] = Field(
        default="true", description="false: active keys only."
    )


class EventListQuery(Query):
    limit: Limit = 20
    after: EventId | None = Field(default=None, description="The last id of the previous page.")
    type: EventType | None = None


class EventDetailQuery(Query):
    """One page of an event's deliveries (a replay adds one delivery per endpoint)."""

    limit: Limit = 20
    after: DeliveryId | None = Field(
        default=None, description="The last delivery id of the previous page."
    )


class VideoPath(BaseModel):
    video_id: VideoId


class UploadPath(BaseModel):
    upload_id: UploadId


class KeyPath(BaseModel):
    key_id: Annotated[str, issued_id("key")]


class EndpointPath(BaseModel):
    endpoint_id: EndpointId


class EventPath(BaseModel):
    event_id: EventId


class UserPath(BaseModel):
    user: UserName


class CallbackPath(BaseModel):
    token: Annotated[str, Field(pattern=f"^{CALLBACK_TOKEN}$", max_length=200)]
