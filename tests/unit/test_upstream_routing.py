"""Which route a task runs on, and which submit failures move it to the next one."""

import pytest

from schemas.catalogue import WRITE_CONTEXT, ModelSpec, Route
from schemas.config import RuntimeConfig
from worker.upstream import (
    AmbiguousSubmitError,
    OperatorProblemError,
    PermanentUpstreamError,
    TaskNotFoundError,
    TransientUpstreamError,
)
from worker.upstream.routing import kind_of, moves_at_once, position, routes_of

CONFIG = RuntimeConfig(upstream_kind="gateway")
ROUTED = ModelSpec(
    id="veo3-fast",
    routes=[
        Route(provider="gateway"),
        Route(provider="gemini", provider_model="veo-3.0-fast-generate-001"),
    ],
)


def test_a_model_without_routes_has_one_its_provider_or_the_configured_upstream():
    assert routes_of(CONFIG, ModelSpec(id="veo3"), "veo3") == [Route(provider="gateway")]
    own = ModelSpec(id="v", provider="gemini", provider_model="veo-2.0-generate-001")
    assert [r.label("v") for r in routes_of(CONFIG, own, "v")] == ["gemini:veo-2.0-generate-001"]
    assert [r.label("gone") for r in routes_of(CONFIG, None, "gone")] == ["gateway:gone"]


def test_the_recorded_route_is_found_by_its_label_and_anything_else_starts_at_the_first():
    routes = routes_of(CONFIG, ROUTED, "veo3-fast")
    assert [r.label("veo3-fast") for r in routes] == [
        "gateway:veo3-fast",
        "gemini:veo-3.0-fast-generate-001",
    ]
    assert position(routes, "gemini:veo-3.0-fast-generate-001", "veo3-fast") == 1
    assert position(routes, None, "veo3-fast") == 0
    assert position(routes, "gemini:removed-since", "veo3-fast") == 0
    assert (kind_of("gemini:veo-3.0-fast-generate-001"), kind_of(None)) == ("gemini", None)


@pytest.mark.parametrize(
    ("error", "moves"),
    [
        (TransientUpstreamError("rate_limited", "saturated", status=429), True),
        (TransientUpstreamError("new_api_error", "no channel", status=503), True),
        (OperatorProblemError("auth", "bad key", status=401), True),
        (OperatorProblemError("quota", "empty", status=403), True),
        (TaskNotFoundError("NOT_FOUND", "no such model", status=404), True),
        (TransientUpstreamError("server_error", "oops", status=500), False),  # retried first
        (TransientUpstreamError("connect_error", "refused"), False),
        (PermanentUpstreamError("invalid_request", "bad body", status=400), False),
        (AmbiguousSubmitError("submit_timeout", "no answer"), False),
    ],
)
def test_only_failures_that_created_nothing_move_at_once(error, moves):
    assert moves_at_once(error) is moves


def test_duplicate_routes_are_refused_at_write_and_taken_once_if_stored():
    twice = {
        "id": "veo3-fast",
        "routes": [
            {"provider": "gemini", "provider_model": "veo-3.0-fast-generate-001"},
            {"provider": "gateway"},
            {"provider": "gemini", "provider_model": "veo-3.0-fast-generate-001"},
        ],
    }
    with pytest.raises(ValueError, match="routes has duplicates"):
        ModelSpec.model_validate(twice, context=WRITE_CONTEXT)
    stored = ModelSpec.model_validate(twice)  # a catalogue written before the rule
    routes = routes_of(CONFIG, stored, "veo3-fast")
    labels = [r.label("veo3-fast") for r in routes]
    assert labels == ["gemini:veo-3.0-fast-generate-001", "gateway:veo3-fast"]
    # The failover walks forward and ends: the last route is the last.
    assert position(routes, labels[-1], "veo3-fast") == len(routes) - 1
