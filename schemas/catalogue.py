"""The Veo model catalogue as data (UPSTREAM.md §1).

The built-in list seeds the runtime config; operators extend or reprice it through
``PUT /v1/admin/config`` without a code change.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

UNKNOWN_MODEL_PRICE = 100


class ModelSpec(BaseModel):
    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")
    text_to_video: bool = True
    max_images: int = Field(default=0, ge=0, le=8)
    image_roles: list[str] = Field(default_factory=list)
    price: int = Field(default=UNKNOWN_MODEL_PRICE, ge=0)
    # aspect_ratio / enable_upsample are only understood by the veo3 text models.
    supports_aspect_ratio: bool = False

    @property
    def image_to_video(self) -> bool:
        return self.max_images > 0

    def roles_text(self) -> str:
        roles = list(dict.fromkeys(self.image_roles))  # unique, in order
        return ", ".join(roles) if roles else "no images"


FIRST = "first frame"
LAST = "last frame"
ELEMENT = "elements that appear in the video"

DEFAULT_CATALOGUE: tuple[ModelSpec, ...] = (
    ModelSpec(id="veo3", price=100, supports_aspect_ratio=True),
    ModelSpec(id="veo3-fast", price=80, supports_aspect_ratio=True),
    ModelSpec(id="veo3-pro", price=150, supports_aspect_ratio=True),
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
        image_roles=[ELEMENT, ELEMENT, ELEMENT],
    ),
)


def find_model(catalogue: list[ModelSpec], model_id: str) -> ModelSpec | None:
    return next((m for m in catalogue if m.id == model_id), None)
