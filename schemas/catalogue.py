"""The model catalogue as data (UPSTREAM.md §1).

Each public model id maps to its provider (absent: the configured upstream kind), the
provider's own id for it (absent: the public id) and what it accepts. The built-in list
seeds the runtime config; operators extend or reprice it through ``PUT
/v1/admin/config`` without a code change.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from schemas.providers import KIND_PATTERN

UNKNOWN_MODEL_PRICE = 100
ASPECT_RATIOS = ("16:9", "9:16")
_MODEL_ID = r"^[A-Za-z0-9._:-]+$"
AspectRatio = Annotated[str, Field(pattern=r"^[0-9]{1,2}:[0-9]{1,2}$")]
Resolution = Annotated[str, Field(pattern=r"^[0-9]{3,4}p$")]
Seconds = Annotated[int, Field(ge=1, le=600)]


class ImageRole(StrEnum):
    """What an input image is for; a provider places each image by its role."""

    FIRST_FRAME = "first_frame"
    LAST_FRAME = "last_frame"
    REFERENCE = "reference"

    @property
    def label(self) -> str:
        """The wording ``GET /v1/models`` and error messages show."""
        return _LABELS[self]


_LABELS = {
    ImageRole.FIRST_FRAME: "first frame",
    ImageRole.LAST_FRAME: "last frame",
    ImageRole.REFERENCE: "elements that appear in the video",
}


class ModelSpec(BaseModel):
    """One public model.

    ``image_roles`` gives the role of each image by position (image ``i`` has
    ``image_roles[i]``; images past the list are references). ``durations`` (seconds) and
    ``resolutions`` list what a caller may choose; empty means the model's fixed output.
    ``aspect_ratios`` empty means the provider picks; ``upsample`` whether the provider
    can upsample this model.
    """

    id: str = Field(min_length=1, max_length=100, pattern=_MODEL_ID)
    provider: str | None = Field(default=None, pattern=KIND_PATTERN)
    provider_model: str | None = Field(default=None, max_length=100, pattern=_MODEL_ID)
    text_to_video: bool = True
    max_images: int = Field(default=0, ge=0, le=8)
    image_roles: list[ImageRole] = Field(default_factory=list)
    aspect_ratios: list[AspectRatio] = Field(default_factory=list)
    durations: list[Seconds] = Field(default_factory=list)
    resolutions: list[Resolution] = Field(default_factory=list)
    upsample: bool = False
    price: int = Field(default=UNKNOWN_MODEL_PRICE, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _earlier_shape(cls, data: Any) -> Any:
        """Read documents stored before roles were typed: ``image_roles`` as display text
        and ``supports_aspect_ratio`` (aspect ratio and upsample, the veo3 text models)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.pop("supports_aspect_ratio", False):
            data.setdefault("aspect_ratios", list(ASPECT_RATIOS))
            data.setdefault("upsample", True)
        roles = data.get("image_roles")
        if isinstance(roles, list):
            data["image_roles"] = [_role_of(role) for role in roles]
        return data

    @property
    def image_to_video(self) -> bool:
        return self.max_images > 0

    @property
    def supports_aspect_ratio(self) -> bool:
        return bool(self.aspect_ratios)

    @property
    def upstream_model(self) -> str:
        """The id the provider knows this model by."""
        return self.provider_model or self.id

    def role_at(self, position: int) -> ImageRole:
        """The role of the image at ``position`` (0-based) in a request."""
        if position < len(self.image_roles):
            return self.image_roles[position]
        return ImageRole.REFERENCE

    def role_labels(self) -> list[str]:
        return [role.label for role in self.image_roles]

    def roles_text(self) -> str:
        roles = list(dict.fromkeys(self.role_labels()))  # unique, in order
        return ", ".join(roles) if roles else "no images"


def _role_of(value: object) -> object:
    """An earlier free-text role as a typed one: frames by name, anything else a reference."""
    if not isinstance(value, str) or value in ImageRole._value2member_map_:
        return value
    for role, label in _LABELS.items():
        if value.strip().lower() == label:
            return role
    return ImageRole.REFERENCE


FIRST = ImageRole.FIRST_FRAME
LAST = ImageRole.LAST_FRAME
REFERENCE = ImageRole.REFERENCE
_VEO3_TEXT: dict[str, Any] = {"aspect_ratios": list(ASPECT_RATIOS), "upsample": True}

DEFAULT_CATALOGUE: tuple[ModelSpec, ...] = (
    ModelSpec(id="veo3", price=100, **_VEO3_TEXT),
    ModelSpec(id="veo3-fast", price=80, **_VEO3_TEXT),
    ModelSpec(id="veo3-pro", price=150, **_VEO3_TEXT),
    ModelSpec(id="veo3-pro-frames", price=200, max_images=1, image_roles=[FIRST]),
    ModelSpec(id="veo3-fast-frames", price=160, max_images=1, image_roles=[FIRST]),
    ModelSpec(id="veo2", price=80),
    ModelSpec(id="veo2-fast", price=60),
    ModelSpec(id="veo2-pro", price=120),
    ModelSpec(id="veo2-fast-frames", price=120, max_images=2, image_roles=[FIRST, LAST]),
    ModelSpec(
        id="veo2-fast-components",
        price=100,
        max_images=3,
        image_roles=[REFERENCE, REFERENCE, REFERENCE],
    ),
)


def find_model(catalogue: list[ModelSpec], model_id: str) -> ModelSpec | None:
    return next((m for m in catalogue if m.id == model_id), None)
