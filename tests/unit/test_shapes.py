"""The kinds of value a catalogue entry offers and a create names: one type of each, so
every value of a kind an entry may offer is one a request can name and back, written one
way only; a size is an aspect ratio at a resolution."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, get_args

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from schemas.api import VideoCreate
from schemas.catalogue import ImageRole, RoleName
from schemas.problems import Code
from schemas.shapes import (
    MAX_SECONDS,
    AspectRatio,
    Resolution,
    Seconds,
    SecondsText,
    Size,
    lowest_terms,
    ratio_parts,
    size_of,
)
from service.errors import from_validation

SECONDS: TypeAdapter[int] = TypeAdapter(Seconds)
SECONDS_TEXT: TypeAdapter[str] = TypeAdapter(SecondsText)
RATIO: TypeAdapter[str] = TypeAdapter(AspectRatio)
RESOLUTION: TypeAdapter[str] = TypeAdapter(Resolution)
SIZE: TypeAdapter[str] = TypeAdapter(Size)

RATIOS = st.builds(lambda w, h: f"{w}:{h}", st.integers(1, 99), st.integers(1, 99))
RESOLUTIONS = st.integers(100, 9999).map(lambda short: f"{short}p")
# Text near the kinds: digits of every script, separators, signs, space.
NEAR_CHARACTERS = "0123456789:xXp \t\n-+._e\u00b2\u0663\uff11\uff1a\u00d7"
NEAR = st.text(st.sampled_from(NEAR_CHARACTERS), max_size=14)
MALFORMED_ANYWHERE = [
    "", "0", "00", "-1", "+8", "8.0", "1e3", " 8", "8 ", "8\n", "\uff11\uff10", "\u0663",
    "8\u00b2", "abc", "9" * 10_000, "1:0", "0:1", "16:09", "16/9", "16:9:1", "\uff11:\uff11",
    "1280X720", "1280\u00d7720", "0x720", "1280x0", "-1280x720", "720P", "4k",
]  # fmt: skip


def accepts(adapter: TypeAdapter[Any], value: object) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


@given(st.integers(-(10**6), 10**6))
@example(0)
@example(1)
@example(MAX_SECONDS)
@example(MAX_SECONDS + 1)
def test_seconds_text_is_exactly_the_lengths_an_entry_may_offer(n: int) -> None:
    assert accepts(SECONDS_TEXT, str(n)) == accepts(SECONDS, n) == (1 <= n <= MAX_SECONDS)


@given(NEAR)
def test_seconds_text_is_only_a_length_written_plainly(text: str) -> None:
    if accepts(SECONDS_TEXT, text):
        assert accepts(SECONDS, int(text)) and str(int(text)) == text


@given(RATIOS, RESOLUTIONS)
@example("16:9", "720p")
@example("99:1", "9999p")
@example("1:99", "100p")
def test_every_ratio_at_every_resolution_is_a_size_a_request_can_name(
    ratio: str, resolution: str
) -> None:
    assert accepts(RATIO, ratio) and accepts(RESOLUTION, resolution)
    size = size_of(ratio, resolution)
    assert accepts(SIZE, size), size
    width, height = (int(side) for side in size.split("x"))
    short = int(resolution.removesuffix("p"))
    w, h = ratio_parts(ratio)
    assert min(width, height) == short and (width >= height) == (w >= h)
    exact = Fraction(short * max(w, h), min(w, h))
    long = max(width, height)
    assert long == exact if exact.denominator == 1 else (long % 2 == 0 and abs(long - exact) < 1)


@given(RATIOS)
def test_lowest_terms_is_the_same_ratio_reduced(ratio: str) -> None:
    reduced = lowest_terms(ratio)
    assert Fraction(*ratio_parts(reduced)) == Fraction(*ratio_parts(ratio))
    assert lowest_terms(reduced) == reduced and accepts(RATIO, reduced)


@pytest.mark.parametrize("value", MALFORMED_ANYWHERE)
def test_text_of_no_kind_is_refused_by_every_kind(value: str) -> None:
    for adapter in (SECONDS_TEXT, RATIO, RESOLUTION, SIZE):
        assert not accepts(adapter, value), value


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | NEAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)


@settings(max_examples=300)
@given(st.sampled_from(["seconds", "size", "aspect_ratio"]), JSON_VALUES)
@example("seconds", 8)
@example("seconds", 8.0)
@example("seconds", True)
@example("size", ["1280x720"])
@example("aspect_ratio", {"w": 16, "h": 9})
def test_a_create_field_of_any_json_value_is_valid_or_a_validation_problem(
    field: str, value: object
) -> None:
    try:
        created = VideoCreate.model_validate({"prompt": "a boat", field: value})
    except ValidationError as exc:
        problem = from_validation(exc)
        assert problem.code == Code.VALIDATION_ERROR and problem.status == 400
        assert problem.extra["errors"][0]["field"] == field
    else:  # only text of the kind (or null: the field left out)
        assert value is None or (isinstance(value, str) and getattr(created, field) == value)


def test_the_role_names_a_request_takes_are_the_catalogue_roles() -> None:
    assert set(get_args(RoleName)) == {role.value for role in ImageRole}
