"""The Gemini API's ``predictLongRunning`` body, checked as strictly as Google checks it.

What Google refuses is refused here with 400 ``INVALID_ARGUMENT`` naming the fault, so a
client that sends it is caught: an image as a URL or in an ``inlineData`` wrapper, a
``referenceType`` other than ``ASSET``/``STYLE``, ``durationSeconds`` as text, a length
the model does not make, 1080p or reference images at another length than 8 s, a last
frame without a first, reference images or a last frame on a model other than Veo 3.1,
and the parameters the Developer API does not take (``seed``, ``fps``,
``generateAudio``, ``compressionQuality``, ``storageUri``, ``enhancePrompt`` …).
"""

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from simulator.images import InputImage
from simulator.submit import SubmitRequest

ASPECT_RATIOS = frozenset({"16:9", "9:16"})
RESOLUTIONS = frozenset({"720p", "1080p"})
PERSON_GENERATION = frozenset({"allow_all", "allow_adult", "dont_allow"})
REFERENCE_TYPES = frozenset({"ASSET", "STYLE"})
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
PARAMETERS = frozenset(
    {"aspectRatio", "resolution", "durationSeconds", "negativePrompt", "personGeneration",
     "sampleCount", "numberOfVideos"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Model:
    """What one Veo model of the Gemini API takes."""

    durations: frozenset[int]
    resolutions: frozenset[str]
    frames: bool = False  # lastFrame and referenceImages (Veo 3.1)


_VEO3 = Model(frozenset({4, 6, 8}), RESOLUTIONS)
_VEO31 = Model(frozenset({4, 6, 8}), RESOLUTIONS, frames=True)
MODELS = {
    "veo-2.0-generate-001": Model(frozenset({5, 6, 8}), frozenset({"720p"})),
    "veo-3.0-generate-001": _VEO3,
    "veo-3.0-fast-generate-001": _VEO3,
    "veo-3.1-generate-preview": _VEO31,
    "veo-3.1-fast-generate-preview": _VEO31,
}
LONGEST = 8


class InvalidArgument(ValueError):
    """Answered with 400 ``INVALID_ARGUMENT`` and this text."""


def parse_predict(model: str, raw: bytes) -> SubmitRequest:
    """The request for `model` (known: see `MODELS`); raises InvalidArgument."""
    spec = MODELS[model]
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidArgument("Invalid JSON payload received.") from None
    if not isinstance(body, dict):
        raise InvalidArgument("Invalid JSON payload received. Expected an object.")
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        raise InvalidArgument("instances must hold exactly one instance.")
    instance: dict[str, Any] = instances[0]
    prompt = instance.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidArgument("instances[0].prompt is required.")
    images, roles = _images(instance, spec)
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidArgument("parameters must be an object.")
    seconds, resolution, ratio = _parameters(parameters, spec, "element" in roles)
    received = {
        "instances": [_described(instance, images, roles)],
        "parameters": parameters,
    }
    return SubmitRequest(
        prompt=prompt,
        model=model,
        notify_hook="",
        aspect_ratio=ratio,
        enable_upsample=resolution == "1080p",
        images=images,
        received=received,
        roles=roles,
        seconds=float(seconds),
    )


def _images(
    instance: dict[str, Any], spec: Model
) -> tuple[tuple[InputImage, ...], tuple[str, ...]]:
    unknown = set(instance) - {"prompt", "image", "lastFrame", "referenceImages"}
    if unknown:
        raise InvalidArgument(f"Unknown name {sorted(unknown)[0]!r} in instances[0].")
    images: list[InputImage] = []
    roles: list[str] = []
    if "image" in instance:
        images.append(_inline(instance["image"], "image"))
        roles.append("first")
    if "lastFrame" in instance:
        if not spec.frames:
            raise InvalidArgument("lastFrame is not supported by this model.")
        if "image" not in instance:
            raise InvalidArgument("lastFrame needs image (the first frame).")
        images.append(_inline(instance["lastFrame"], "lastFrame"))
        roles.append("last")
    references = instance.get("referenceImages")
    if references is not None:
        if not spec.frames:
            raise InvalidArgument("referenceImages is not supported by this model.")
        if "image" in instance:
            raise InvalidArgument("referenceImages cannot be combined with image or lastFrame.")
        if not isinstance(references, list) or not 1 <= len(references) <= 3:
            raise InvalidArgument("referenceImages takes 1 to 3 images.")
        for i, reference in enumerate(references):
            where = f"referenceImages[{i}]"
            if not isinstance(reference, dict) or reference.get("referenceType") not in (
                REFERENCE_TYPES
            ):
                raise InvalidArgument(f"{where}.referenceType must be ASSET or STYLE.")
            images.append(_inline(reference.get("image"), f"{where}.image"))
            roles.append("element")
    return tuple(images), tuple(roles)


def _inline(value: object, where: str) -> InputImage:
    """``{"bytesBase64Encoded", "mimeType"}``: nothing else (no URL, no ``inlineData``)."""
    if not isinstance(value, dict) or set(value) != {"bytesBase64Encoded", "mimeType"}:
        raise InvalidArgument(
            f"{where} must be {{bytesBase64Encoded, mimeType}}"
            f" (got {sorted(value) if isinstance(value, dict) else type(value).__name__})."
        )
    mime, encoded = value["mimeType"], value["bytesBase64Encoded"]
    if mime not in IMAGE_TYPES:
        raise InvalidArgument(f"{where}.mimeType {mime!r} is not supported.")
    try:
        data = base64.b64decode(str(encoded), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"{where}.bytesBase64Encoded is not base64.") from None
    if not data:
        raise InvalidArgument(f"{where} is empty.")
    return InputImage(source="data", mime=mime, data=data)


def _parameters(
    parameters: dict[str, Any], spec: Model, references: bool
) -> tuple[int, str, str | None]:
    refused = sorted(set(parameters) - PARAMETERS)
    if refused:
        raise InvalidArgument(f"{refused[0]} parameter is not supported in Gemini API.")
    ratio = parameters.get("aspectRatio")
    if ratio is not None and ratio not in ASPECT_RATIOS:
        raise InvalidArgument(f"aspectRatio {ratio!r} is not supported.")
    resolution = parameters.get("resolution", "720p")
    if resolution not in spec.resolutions:
        raise InvalidArgument(f"resolution {resolution!r} is not supported by this model.")
    seconds = parameters.get("durationSeconds", LONGEST)
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise InvalidArgument("durationSeconds must be a number.")
    if seconds not in spec.durations:
        raise InvalidArgument(f"durationSeconds {seconds} is not supported by this model.")
    if (resolution == "1080p" or references) and seconds != LONGEST:
        raise InvalidArgument("1080p and referenceImages need durationSeconds 8.")
    people = parameters.get("personGeneration")
    if people is not None and people not in PERSON_GENERATION:
        raise InvalidArgument(f"personGeneration {people!r} is not supported.")
    negative = parameters.get("negativePrompt")
    if negative is not None and not isinstance(negative, str):
        raise InvalidArgument("negativePrompt must be a string.")
    count = parameters.get("sampleCount", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 4:
        raise InvalidArgument("sampleCount must be 1 to 4.")
    return seconds, resolution, ratio


def _described(
    instance: dict[str, Any], images: tuple[InputImage, ...], roles: tuple[str, ...]
) -> dict[str, Any]:
    """The instance as ``/_sim/tasks`` shows it: images described, never carried."""
    described: dict[str, Any] = {"prompt": instance["prompt"]}
    for image, role in zip(images, roles, strict=True):
        if role == "first":
            described["image"] = image.describe()
        elif role == "last":
            described["lastFrame"] = image.describe()
        else:
            described.setdefault("referenceImages", []).append(image.describe())
    return described
