"""The model catalogue as data (docs/upstreams.md, "Model catalogue").

Each public model id maps to its provider (absent: the configured upstream kind), the
provider's own id for it (absent: the public id) and what it accepts. The built-in list
seeds the runtime config; operators extend or reprice it through ``PUT
/v1/admin/config`` without a code change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, ValidationInfo, model_validator

from schemas.fields import NonNegativeInt32
from schemas.providers import KIND_PATTERN
from schemas.shapes import (
    RESOLUTION_PATTERN,
    AspectRatio,
    Resolution,
    Seconds,
    lowest_terms,
    size_of,
)

UNKNOWN_MODEL_PRICE = 100
# The aspect ratios Veo makes (an operator's entry may offer any other).
ASPECT_RATIOS = ("16:9", "9:16")
_CAPABILITIES = ("aspect_ratios", "durations", "resolutions", "upsample")
_LISTS = ("aspect_ratios", "durations", "resolutions", "person_generation", "longest_seconds_only")
MODEL_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
# An ImageRole's value, as a request names it (strict validation takes no enum from text).
RoleName = Literal["first_frame", "last_frame", "reference"]
# Google's personGeneration values (which a model takes is its entry's to say).
PersonGeneration = Literal["allow_all", "allow_adult", "dont_allow"]
# What may need a model's longest duration (Veo 3 and 3.1 on the Gemini API: 8 s): a
# resolution it offers, or taking reference images.
REFERENCE_IMAGES = "reference_images"
LongestOnly = Annotated[
    str, Field(max_length=16, pattern=rf"^({RESOLUTION_PATTERN[1:-1]}|{REFERENCE_IMAGES})$")
]
# Validation context of a config being written (``PUT /v1/admin/config``): the checks a
# new document must pass, which a document stored by an earlier version need not.
WRITE_CONTEXT: dict[str, Any] = {"writing": True}


def is_write(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("writing"))


def write_context(kept: Iterable[ModelSpec] = ()) -> dict[str, Any]:
    """:data:`WRITE_CONTEXT`, with the catalogue entries stored before the write: an entry
    the write leaves as it was is not checked again (the version that stored it admitted
    it), so checks added later never lock the config; a new or changed entry is."""
    return {**WRITE_CONTEXT, "kept": frozenset(_fingerprint(spec) for spec in kept)}


def _fingerprint(spec: ModelSpec) -> str:
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True)


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


class Route(BaseModel):
    """One way to make a public model: a provider kind and that provider's id for it
    (absent: the public id)."""

    provider: str = Field(pattern=KIND_PATTERN)
    provider_model: str | None = Field(default=None, max_length=100, pattern=MODEL_ID_PATTERN)

    def label(self, public_id: str) -> str:
        """``kind:model``, as a task records the route that served it."""
        return f"{self.provider}:{self.provider_model or public_id}"


class ModelSpec(BaseModel):
    """One public model and what it can honour.

    ``image_roles`` gives the role of each image by position (image ``i`` has
    ``image_roles[i]``; images past the list are references). ``aspect_ratios`` and
    ``resolutions`` are what the model can produce (``size`` is their product: 16:9 at
    720p is 1280x720); ``durations`` the lengths in seconds a caller may ask for — one
    value for a model of fixed length, none for a model whose length cannot be chosen.
    Each value is of the kind a request names (``schemas.shapes``), and a written entry
    offers nothing a request could not ask for. ``upsample``: 1080p comes from the
    provider's upsampling (the gateway's ``enable_upsample``). ``reference_images``:
    besides its positional roles, the model takes up to this many elements and nothing
    else, when the request says so (``image_roles: ["reference", …]``).
    ``negative_prompt``, ``person_generation`` (the values it takes), ``seed`` and
    ``enhance_prompt`` say which of those request fields the model honours;
    ``longest_seconds_only`` what it makes only at its longest duration (a resolution it
    offers, or ``reference_images``). A request for anything not listed is refused, never
    ignored. ``routes``, when given, are the ways to make it in order of preference
    (``provider`` and ``provider_model`` are then not used): a submit that fails without
    creating a task moves to the next one; every route must honour what the entry offers.
    """

    id: str = Field(min_length=1, max_length=100, pattern=MODEL_ID_PATTERN)
    provider: str | None = Field(default=None, pattern=KIND_PATTERN)
    provider_model: str | None = Field(default=None, max_length=100, pattern=MODEL_ID_PATTERN)
    text_to_video: StrictBool = True
    max_images: StrictInt = Field(default=0, ge=0, le=8)
    image_roles: list[ImageRole] = Field(default_factory=list, max_length=8)
    aspect_ratios: list[AspectRatio] = Field(default_factory=list, max_length=8)
    durations: list[Seconds] = Field(default_factory=list, max_length=32)
    resolutions: list[Resolution] = Field(default_factory=list, max_length=8)
    upsample: StrictBool = False
    reference_images: StrictInt = Field(default=0, ge=0, le=8)
    negative_prompt: StrictBool = False
    person_generation: list[PersonGeneration] = Field(default_factory=list, max_length=3)
    seed: StrictBool = True
    enhance_prompt: StrictBool = True
    longest_seconds_only: list[LongestOnly] = Field(default_factory=list, max_length=9)
    routes: list[Route] = Field(default_factory=list, max_length=4)
    price: NonNegativeInt32 = UNKNOWN_MODEL_PRICE

    @model_validator(mode="before")
    @classmethod
    def _earlier_shape(cls, data: Any) -> Any:
        """Read documents stored before roles were typed: ``image_roles`` as display text
        and ``supports_aspect_ratio`` (aspect ratio and upsample, the veo3 text models)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        # Written before capabilities were recorded: a built-in model gets the built-in ones.
        earlier = not any(key in data for key in _CAPABILITIES)
        builtin = _BUILTIN.get(str(data.get("id"))) if earlier else None
        if builtin is not None:
            for key in _CAPABILITIES:
                data[key] = getattr(builtin, key)
            data.pop("supports_aspect_ratio", None)
        if data.pop("supports_aspect_ratio", False):
            data.setdefault("aspect_ratios", list(ASPECT_RATIOS))
            data.setdefault("resolutions", ["720p", "1080p"])
            data.setdefault("upsample", True)
        roles = data.get("image_roles")
        if isinstance(roles, list):
            data["image_roles"] = [_role_of(role) for role in roles]
        return data

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> ModelSpec:
        """On write: an entry every part of which can be used (a kept one as it was:
        :func:`write_context`)."""
        if not is_write(info) or _fingerprint(self) in (info.context or {}).get("kept", ()):
            return self
        problems = []
        if not self.text_to_video and not self.most_images:
            problems.append(
                "it makes nothing (text_to_video is false, max_images and reference_images 0)"
            )
        if len(self.image_roles) > self.max_images:
            problems.append(f"{len(self.image_roles)} image_roles for max_images {self.max_images}")
        for name in _LISTS:
            values = getattr(self, name)
            if len(values) != len(set(values)):
                problems.append(f"{name} has duplicates")
        labels = [route.label(self.id) for route in self.routes]
        if len(labels) != len(set(labels)):
            problems.append("routes has duplicates (the same provider and provider_model)")
        problems.extend(self._unrequestable_shapes())
        problems.extend(self._unrequestable_lengths())
        if problems:
            raise ValueError(f"model {self.id}: {'; '.join(problems)}")
        return self

    @property
    def image_to_video(self) -> bool:
        return self.most_images > 0

    @property
    def supports_aspect_ratio(self) -> bool:
        """The caller can choose the aspect ratio (the model makes more than one)."""
        return len(self.aspect_ratios) > 1

    def _unrequestable_shapes(self) -> list[str]:
        """Why some aspect ratio or resolution could never be asked for: a resolution is
        asked for only through a ``size`` (so with an aspect ratio to make it), and a size
        must say which ratio it is (so no ratio twice, as 16:9 and 32:18)."""
        problems = []
        same: dict[str, str] = {}
        for ratio in dict.fromkeys(self.aspect_ratios):
            if (other := same.setdefault(lowest_terms(ratio), ratio)) != ratio:
                problems.append(f"aspect_ratios {other} and {ratio} are the same ratio")
        if self.resolutions and not self.aspect_ratios:
            problems.append(
                f"resolutions {self.resolutions} cannot be requested without aspect_ratios"
                " (a size is an aspect ratio at a resolution)"
            )
        made: dict[str, str] = {}
        for (ratio, resolution), size in self.size_table().items():
            other = made.setdefault(size, ratio)
            if other != ratio and lowest_terms(other) != lowest_terms(ratio):
                problems.append(
                    f"aspect_ratios {other} and {ratio} both make size {size} at {resolution}"
                )
        return problems

    def _unrequestable_lengths(self) -> list[str]:
        """Why ``longest_seconds_only`` could not be honoured as written: it names what the
        model does not offer, or leaves some of its durations unaskable."""
        if not self.longest_seconds_only:
            return []
        if not self.durations:
            return ["longest_seconds_only needs durations to choose from"]
        problems = []
        offered = [*self.resolutions, *([REFERENCE_IMAGES] if self.reference_images else [])]
        if unknown := [what for what in self.longest_seconds_only if what not in offered]:
            problems.append(f"longest_seconds_only names {unknown}, which the model does not offer")
        # Without text_to_video every request has an image, the first in its first role.
        always_references = not self.text_to_video and self.role_at(0) == ImageRole.REFERENCE
        shorter = sorted(set(self.durations))[:-1]
        if REFERENCE_IMAGES in self.longest_seconds_only and always_references and shorter:
            problems.append(
                f"durations {shorter} can never be asked for: every request has a reference"
                " image (text_to_video is false, the first image is a reference) and"
                " longest_seconds_only names reference_images"
            )
        return problems

    def size_table(self) -> dict[tuple[str, str], str]:
        """(aspect ratio, resolution) -> the size they make, for each pair the model has,
        by resolution."""
        return {
            (ratio, resolution): size_of(ratio, resolution)
            for resolution in self.resolutions
            for ratio in self.aspect_ratios
        }

    @property
    def sizes(self) -> list[str]:
        """The ``size`` values the model can honour: each of its aspect ratios at each of
        its resolutions (16:9 at 720p is 1280x720)."""
        return list(dict.fromkeys(self.size_table().values()))

    def shape_of(self, size: str) -> tuple[str, str] | None:
        """The (aspect ratio, resolution) of a ``size`` the model makes, else None."""
        return next((shape for shape, made in self.size_table().items() if made == size), None)

    @property
    def fixed_seconds(self) -> int | None:
        """The length of every video of a fixed-length model, else None."""
        return self.durations[0] if len(self.durations) == 1 else None

    @property
    def default_seconds(self) -> int | None:
        """The length made when the caller does not choose: the longest (None: the model's
        own, not choosable)."""
        return max(self.durations) if self.durations else None

    @property
    def parameters(self) -> list[str]:
        """The optional ``POST /v1/videos`` fields this model honours (any other is
        refused when given)."""
        offered = {
            "seconds": bool(self.durations),
            "size": bool(self.sizes),
            "aspect_ratio": bool(self.aspect_ratios),
            "negative_prompt": self.negative_prompt,
            "person_generation": bool(self.person_generation),
            "seed": self.seed,
            "enhance_prompt": self.enhance_prompt,
            "image_roles": self.image_to_video,
        }
        return [name for name, honoured in offered.items() if honoured]

    @property
    def most_images(self) -> int:
        """The most images a request may carry, in either way of giving roles."""
        return max(self.max_images, self.reference_images)

    @property
    def upstream_model(self) -> str:
        """The id the provider knows this model by."""
        return self.provider_model or self.id

    def route_list(self, default_kind: str) -> list[Route]:
        """The routes in order: the entry's ``routes``, else its one provider (absent: the
        configured upstream's `default_kind`) with its ``provider_model``."""
        if self.routes:
            return list(self.routes)
        return [Route(provider=self.provider or default_kind, provider_model=self.provider_model)]

    def role_at(self, position: int) -> ImageRole:
        """The role of the image at ``position`` (0-based) in a request."""
        if position < len(self.image_roles):
            return self.image_roles[position]
        return ImageRole.REFERENCE

    def roles_for(self, count: int, requested: list[ImageRole] | None) -> list[ImageRole] | None:
        """The roles of `count` images: `requested` when the model takes them that way
        (its positional roles, or only references up to `reference_images`), the
        positional ones when none are requested; None when the model cannot take them."""
        positional = [self.role_at(i) for i in range(count)]
        if requested is None:
            return positional if count <= self.max_images else None
        if len(requested) != count:
            return None
        if requested == positional and count <= self.max_images:
            return positional
        only_references = all(role == ImageRole.REFERENCE for role in requested)
        if only_references and 0 < count <= self.reference_images:
            return list(requested)
        return None

    def role_choices(self) -> str:
        """What roles the model takes, for messages: "first frame, then last frame (up to
        2), or up to 3 elements that appear in the video"."""
        ways = []
        if self.max_images:
            roles = self.roles_text() if self.image_roles else ImageRole.REFERENCE.label
            ways.append(
                f"{roles} (up to {self.max_images}, in that order)"
                if self.max_images > 1
                else roles
            )
        if self.reference_images:
            ways.append(f"up to {self.reference_images} {ImageRole.REFERENCE.label}")
        return ", or ".join(ways) if ways else "no images"

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
_TEXT_VEO3: dict[str, Any] = {
    "aspect_ratios": list(ASPECT_RATIOS),
    "resolutions": ["720p", "1080p"],
    "durations": [8],
    "upsample": True,
}
_FRAMES_VEO3: dict[str, Any] = {
    "aspect_ratios": ["16:9"],
    "resolutions": ["720p"],
    "durations": [8],
}
# Veo 2 on the gateway makes 5-8 s videos; the route has no field to choose the length.
_VEO2: dict[str, Any] = {"aspect_ratios": ["16:9"], "resolutions": ["720p"], "durations": []}

DEFAULT_CATALOGUE: tuple[ModelSpec, ...] = (
    ModelSpec(id="veo3", price=100, **_TEXT_VEO3),
    ModelSpec(id="veo3-fast", price=80, **_TEXT_VEO3),
    ModelSpec(id="veo3-pro", price=150, **_TEXT_VEO3),
    ModelSpec(id="veo3-pro-frames", price=200, max_images=1, image_roles=[FIRST], **_FRAMES_VEO3),
    ModelSpec(id="veo3-fast-frames", price=160, max_images=1, image_roles=[FIRST], **_FRAMES_VEO3),
    ModelSpec(id="veo2", price=80, **_VEO2),
    ModelSpec(id="veo2-fast", price=60, **_VEO2),
    ModelSpec(id="veo2-pro", price=120, **_VEO2),
    ModelSpec(id="veo2-fast-frames", price=120, max_images=2, image_roles=[FIRST, LAST], **_VEO2),
    ModelSpec(
        id="veo2-fast-components",
        price=100,
        max_images=3,
        image_roles=[REFERENCE, REFERENCE, REFERENCE],
        **_VEO2,
    ),
    # The veo3.1 family the gateways sell (docs/upstreams.md); priced at the unknown-model
    # default until an operator sets a price.
    ModelSpec(id="veo3.1", **_TEXT_VEO3),
    ModelSpec(id="veo3.1-fast", **_TEXT_VEO3),
    ModelSpec(id="veo3.1-pro", max_images=2, image_roles=[FIRST, LAST], **_TEXT_VEO3),
    ModelSpec(
        id="veo3.1-components",
        max_images=3,
        image_roles=[REFERENCE, REFERENCE, REFERENCE],
        **_FRAMES_VEO3,
    ),
)
# Google's Gemini API (docs/upstreams.md, "Google's Gemini API"): lengths and sizes are
# chosen per request, 1080p (and Veo 3.1's reference images) only at 8 s; no seed, no
# prompt rewriting. Priced as the gateway's models of the same family.
_GEMINI: dict[str, Any] = {
    "provider": "gemini",
    "aspect_ratios": list(ASPECT_RATIOS),
    "negative_prompt": True,
    "seed": False,
    "enhance_prompt": False,
}
_GEMINI_VEO3: dict[str, Any] = {
    **_GEMINI,
    "resolutions": ["720p", "1080p"],
    "durations": [4, 6, 8],
    "person_generation": ["allow_all", "allow_adult"],
    "longest_seconds_only": ["1080p"],
}
_GEMINI_VEO31: dict[str, Any] = {
    **_GEMINI_VEO3,
    "max_images": 2,
    "image_roles": [FIRST, LAST],
    "reference_images": 3,
    "longest_seconds_only": ["1080p", "reference_images"],
}
_GEMINI_VEO2: dict[str, Any] = {
    **_GEMINI,
    "resolutions": ["720p"],
    "durations": [5, 6, 8],
    "person_generation": ["allow_all", "allow_adult", "dont_allow"],
}
GEMINI_CATALOGUE: tuple[ModelSpec, ...] = (
    ModelSpec(id="veo-3.1-generate-preview", price=100, **_GEMINI_VEO31),
    ModelSpec(id="veo-3.1-fast-generate-preview", price=80, **_GEMINI_VEO31),
    ModelSpec(
        id="veo-3.0-generate-001", price=100, max_images=1, image_roles=[FIRST], **_GEMINI_VEO3
    ),
    ModelSpec(
        id="veo-3.0-fast-generate-001", price=80, max_images=1, image_roles=[FIRST], **_GEMINI_VEO3
    ),
    ModelSpec(
        id="veo-2.0-generate-001", price=80, max_images=1, image_roles=[FIRST], **_GEMINI_VEO2
    ),
)
DEFAULT_CATALOGUE = DEFAULT_CATALOGUE + GEMINI_CATALOGUE
_BUILTIN = {spec.id: spec for spec in DEFAULT_CATALOGUE}


def find_model(catalogue: list[ModelSpec], model_id: str) -> ModelSpec | None:
    return next((m for m in catalogue if m.id == model_id), None)
