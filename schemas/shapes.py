"""The kinds of value a catalogue entry offers and a create asks for: a length in seconds,
an aspect ratio, a resolution and the size they make. One type of each serves both sides,
so whatever an operator can offer a caller can ask for, and a value of no kind is a 400
``validation_error`` before any model is looked at (one of the kind that the chosen model
does not offer is its 400 ``unsupported_parameter``).

Each is written one way only (ASCII digits, no sign, no leading zero, no space): a value
either is in a model's list as given or is not, with nothing to normalise.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Annotated

from pydantic import Field, StrictInt

MAX_SECONDS = 600
# 1 to MAX_SECONDS as a request writes it (the OpenAI Videos API's `seconds` is text).
SECONDS_PATTERN = r"^([1-9][0-9]?|[1-5][0-9]{2}|600)$"
# W:H, 1-99 each side, as written ("21:9" and "7:3" are the same ratio, told apart).
ASPECT_RATIO_PATTERN = r"^[1-9][0-9]?:[1-9][0-9]?$"
# The shorter side in pixels: 100p to 9999p.
RESOLUTION_PATTERN = r"^[1-9][0-9]{2,3}p$"
# WIDTHxHEIGHT: every size a ratio and a resolution make has 3 to 6 digits a side.
SIZE_PATTERN = r"^[1-9][0-9]{1,5}x[1-9][0-9]{1,5}$"

Seconds = Annotated[StrictInt, Field(ge=1, le=MAX_SECONDS)]
"""A length a catalogue entry offers (``durations``)."""

SecondsText = Annotated[str, Field(min_length=1, max_length=3, pattern=SECONDS_PATTERN)]
"""A length a create asks for (``seconds``): the text of a :data:`Seconds`."""

AspectRatio = Annotated[str, Field(min_length=3, max_length=5, pattern=ASPECT_RATIO_PATTERN)]
"""``W:H``, each a whole number from 1 to 99."""

Resolution = Annotated[str, Field(min_length=4, max_length=5, pattern=RESOLUTION_PATTERN)]
"""``NNNp``: the video's shorter side in pixels (720p is 1280x720 at 16:9, 720x720 at 1:1)."""

Size = Annotated[str, Field(min_length=5, max_length=13, pattern=SIZE_PATTERN)]
"""``WIDTHxHEIGHT`` in pixels (the OpenAI Videos API's ``size``)."""


def ratio_parts(ratio: str) -> tuple[int, int]:
    """The width and height of an :data:`AspectRatio`."""
    width, height = ratio.split(":")
    return int(width), int(height)


def lowest_terms(ratio: str) -> str:
    """``ratio`` reduced: ``2:2`` is ``1:1``, ``32:18`` is ``16:9``."""
    width, height = ratio_parts(ratio)
    divisor = math.gcd(width, height)
    return f"{width // divisor}:{height // divisor}"


def size_of(ratio: str, resolution: str) -> str:
    """The size of a video of ``ratio`` at ``resolution``: the shorter side is the
    resolution, the longer one follows from the ratio, rounded to an even number of
    pixels where it is not whole (as encoders want it: 16:9 at 480p is 854x480)."""
    width, height = ratio_parts(ratio)
    short = int(resolution.removesuffix("p"))
    exact = Fraction(short * max(width, height), min(width, height))
    long = exact.numerator if exact.denominator == 1 else 2 * round(exact / 2)
    return f"{long}x{short}" if width >= height else f"{short}x{long}"
