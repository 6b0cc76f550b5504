"""What ``GET /v1/models`` says a model offers, as create bodies: the ones asking for
something it offers (each must be accepted) and well-formed ones asking for something of
the same kind it does not offer (each a 400 ``unsupported_parameter`` naming the model and
the parameter). The unit property test and the HTTP round trip share them."""

from __future__ import annotations

from typing import Any

PROMPT = "a paper boat on a rainy street"
ROLE_NAMES = ("first_frame", "last_frame", "reference")
PERSON_GENERATION = ("allow_all", "allow_adult", "dont_allow")
# Well-formed values of each kind; the ones a model does not offer are asked for.
OTHER_VALUES: dict[str, tuple[str, ...]] = {
    "seconds": ("1", "7", "12", "599", "600"),
    "size": ("1792x1024", "1024x1792", "640x480", "480x854", "123x4567"),
    "aspect_ratio": ("1:1", "4:3", "7:5", "5:7", "99:1"),
    "person_generation": PERSON_GENERATION,
}
# The request field of each list GET /v1/models shows.
LISTED = {
    "seconds": "seconds",
    "size": "sizes",
    "aspect_ratio": "aspect_ratios",
    "person_generation": "person_generation",
}
OPTIONS: dict[str, Any] = {"negative_prompt": "blurry", "seed": 7, "enhance_prompt": True}

Body = dict[str, Any]


def base(info: Body, image: str) -> Body:
    """The least the model takes: the prompt alone, or one image in its first role."""
    body: Body = {"prompt": PROMPT, "model": info["id"]}
    if "text_to_video" not in info["modes"]:
        body["images"] = [image]
        if not info["max_images"]:  # references only, when the request says so
            body["image_roles"] = ["reference"]
    return body


def offered(info: Body, image: str) -> list[Body]:
    """A body for each value the model offers, one value at a time."""
    asks: list[Body] = [
        {field: value} for field, listed in LISTED.items() for value in info[listed]
    ]
    asks += [{name: value} for name, value in OPTIONS.items() if name in info["parameters"]]
    names = info["image_role_names"]
    for count in range(1, info["max_images"] + 1):  # images past the list are references
        positional = [*names, *["reference"] * count][:count]
        asks.append({"images": [image] * count, "image_roles": positional})
    for count in range(1, info["reference_images"] + 1):
        asks.append({"images": [image] * count, "image_roles": ["reference"] * count})
    return [{**base(info, image), **ask} for ask in asks]


def unoffered(info: Body, image: str) -> list[tuple[Body, str]]:
    """(body, parameter) for well-formed values the model does not offer."""
    asks = [
        ({field: value}, field)
        for field, values in OTHER_VALUES.items()
        for value in values
        if value not in info[LISTED[field]]
    ]
    asks += [({n: v}, n) for n, v in OPTIONS.items() if n not in info["parameters"]]
    first = set()
    if info["max_images"]:
        first.add(info["image_role_names"][0] if info["image_role_names"] else "reference")
    if info["reference_images"]:
        first.add("reference")
    if first:  # an image model: one image in a role it does not take first
        asks += [
            ({"images": [image], "image_roles": [role]}, "image_roles")
            for role in ROLE_NAMES
            if role not in first
        ]
    return [({**base(info, image), **ask}, name) for ask, name in asks]
