"""What a catalogue entry offers (as ``GET /v1/models`` shows it) a create can ask for, and
a well-formed value it does not offer is a 400 ``unsupported_parameter`` naming the model
and the parameter: for every model of the default catalogue, and for any entry the admin
config lets an operator write (Hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.api import ModelInfo, VideoCreate
from schemas.catalogue import DEFAULT_CATALOGUE, REFERENCE_IMAGES, WRITE_CONTEXT, ModelSpec
from schemas.config import RuntimeConfig
from schemas.problems import Code
from schemas.shapes import MAX_SECONDS
from service.creation import honoured_shape, image_roles, resolve_model
from service.errors import ProblemError
from tests.offers import PERSON_GENERATION, ROLE_NAMES, offered, unoffered

IMAGE = "https://images.example/boat.png"


def judge(spec: ModelSpec, body: dict[str, Any]) -> None:
    """The create's checks of ``body`` against a config holding ``spec``, as the route
    runs them; raises the ``ProblemError`` of a refusal."""
    req = VideoCreate.model_validate(body)
    count = len(req.images or [])
    chosen = resolve_model(RuntimeConfig(models=[spec]), req, count)
    honoured_shape(chosen, req, image_roles(chosen, req, count))


def assert_round_trip(spec: ModelSpec) -> None:
    info = ModelInfo.of(spec).model_dump(mode="json")
    for body in offered(info, IMAGE):
        try:
            judge(spec, body)
        except ProblemError as exc:
            raise AssertionError(f"{spec.id} offers but refuses {body}: {exc.detail}") from exc
    for body, parameter in unoffered(info, IMAGE):
        with pytest.raises(ProblemError) as refused:
            judge(spec, body)
        problem = refused.value
        assert problem.code == Code.UNSUPPORTED_PARAMETER, (body, problem.detail)
        assert problem.extra["model"] == spec.id and problem.extra["parameter"] == parameter


@pytest.mark.parametrize("spec", DEFAULT_CATALOGUE, ids=lambda spec: spec.id)
def test_a_default_model_accepts_what_it_offers_and_names_itself_refusing_the_rest(
    spec: ModelSpec,
) -> None:
    assert_round_trip(spec)


RATIOS = st.builds(lambda w, h: f"{w}:{h}", st.integers(1, 99), st.integers(1, 99))
RESOLUTIONS = st.integers(100, 9999).map(lambda short: f"{short}p")


@st.composite
def entries(draw: st.DrawFn) -> dict[str, Any]:
    """An operator's catalogue entry, as ``PUT /v1/admin/config`` takes it."""
    max_images = draw(st.integers(0, 8))
    resolutions = draw(st.lists(RESOLUTIONS, unique=True, max_size=8))
    reference_images = draw(st.integers(0, 8))
    longest = [*resolutions, *([REFERENCE_IMAGES] if reference_images else [])]
    return {
        "id": "op-model",
        "text_to_video": draw(st.booleans()),
        "max_images": max_images,
        "image_roles": draw(st.lists(st.sampled_from(ROLE_NAMES), max_size=max_images)),
        "aspect_ratios": draw(st.lists(RATIOS, unique=True, min_size=1, max_size=8)),
        "durations": draw(st.lists(st.integers(1, MAX_SECONDS), unique=True, max_size=32)),
        "resolutions": resolutions,
        "reference_images": reference_images,
        "negative_prompt": draw(st.booleans()),
        "person_generation": draw(st.lists(st.sampled_from(PERSON_GENERATION), unique=True)),
        "seed": draw(st.booleans()),
        "enhance_prompt": draw(st.booleans()),
        "longest_seconds_only": draw(st.lists(st.sampled_from(longest), unique=True))
        if longest
        else [],
        "price": 10,
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries())
def test_an_entry_the_admin_config_takes_accepts_what_it_offers_and_refuses_the_rest(
    entry: dict[str, Any],
) -> None:
    try:
        spec = ModelSpec.model_validate(entry, context=WRITE_CONTEXT)
    except ValidationError:
        assume(False)
        raise
    assert_round_trip(spec)
