"""Validation of the submit body, as strict as the gateway documents it."""

import json
from dataclasses import dataclass, field
from typing import Any

from simulator.images import InputImage, read_image

ASPECT_RATIOS = frozenset({"16:9", "9:16"})


class InvalidRequest(ValueError):
    """The submit body breaks the protocol; answered with 400 ``invalid_request``."""


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """A valid submit body: the fields the simulator uses, and ``received`` for
    ``/_sim/tasks`` (every field as sent, ``images`` described instead of carried).

    ``roles`` (``first``, ``last``, ``element`` per image) and ``seconds`` are set by a
    protocol that names them (the Gemini API's); the gateway's is positional and makes
    its model's own length."""

    prompt: str
    model: str
    notify_hook: str
    aspect_ratio: str | None = None
    enable_upsample: bool = False
    seed: int | None = None
    images: tuple[InputImage, ...] = ()
    received: dict[str, Any] = field(default_factory=dict)
    roles: tuple[str, ...] = ()
    seconds: float | None = None


def parse_submit(raw: bytes) -> SubmitRequest:
    """Check the fields the gateway knows; raises InvalidRequest naming the first fault."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidRequest("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    prompt = _required_text(body, "prompt")
    model = _required_text(body, "model")
    _check_optional(body)
    notify_hook = body.get("notify_hook") or ""
    if not isinstance(notify_hook, str) or (
        notify_hook and not notify_hook.startswith(("http://", "https://"))
    ):
        raise InvalidRequest("notify_hook must be an http(s) URL")
    images = tuple(read_image(text) for text in body.get("images") or ())
    received = dict(body)
    if "images" in body:
        received["images"] = [image.describe() for image in images]
    return SubmitRequest(
        prompt=prompt,
        model=model,
        notify_hook=notify_hook,
        aspect_ratio=body.get("aspect_ratio"),
        enable_upsample=body.get("enable_upsample") is True,
        seed=body.get("seed"),
        images=images,
        received=received,
    )


def _required_text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{name} is required")
    return value


def _check_optional(body: dict[str, Any]) -> None:
    for name in ("enhance_prompt", "enable_upsample"):
        if name in body and not isinstance(body[name], bool):
            raise InvalidRequest(f"{name} must be a boolean")
    images = body.get("images")
    if images is not None and not (
        isinstance(images, list) and all(isinstance(image, str) for image in images)
    ):
        raise InvalidRequest("images must be a list of strings")
    if "aspect_ratio" in body and body["aspect_ratio"] not in ASPECT_RATIOS:
        raise InvalidRequest("aspect_ratio must be 16:9 or 9:16")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise InvalidRequest("seed must be an integer")
