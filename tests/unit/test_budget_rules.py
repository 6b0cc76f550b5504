"""The budget's rules that need no Redis: which polls are near, when a denied call asks
again, which answers shrink the rate, and how the per-kind limits read."""

from __future__ import annotations

import pytest

from schemas.settings import Settings
from worker.budget import (
    HORIZON_SECONDS,
    NEAR_SECONDS,
    Call,
    UpstreamBudget,
    limits,
    rate_limited,
)
from worker.upstream.errors import OperatorProblemError, TransientUpstreamError


def test_a_poll_is_near_within_the_window_of_its_expected_finish_or_past_it() -> None:
    assert Call(finish_in=NEAR_SECONDS).near and Call(finish_in=-500.0).near
    assert not Call(finish_in=NEAR_SECONDS + 0.1).near
    assert Call().near  # a submit or a download


def test_a_denied_far_poll_asks_again_before_it_nears_its_finish_spread_out() -> None:
    again = [UpstreamBudget._again(Call(finish_in=NEAR_SECONDS + 20), 0.1) for _ in range(200)]
    assert all(0.1 <= d <= 20 for d in again) and max(again) - min(again) > 10
    long = [UpstreamBudget._again(Call(finish_in=3600), 0.1) for _ in range(200)]
    assert all(d <= HORIZON_SECONDS for d in long)


def test_a_denied_near_poll_waits_for_the_book_to_have_room_and_then_some() -> None:
    again = [UpstreamBudget._again(Call(finish_in=0), 0.5) for _ in range(200)]
    assert all(0.5 + HORIZON_SECONDS / 2 <= d <= 0.5 + HORIZON_SECONDS for d in again)


def test_rate_limit_answers_are_the_ones_that_shrink_the_budget() -> None:
    assert rate_limited(TransientUpstreamError("upstream_overloaded", "x", status=429))
    assert rate_limited(TransientUpstreamError("RESOURCE_EXHAUSTED", "x", status=None))
    assert not rate_limited(TransientUpstreamError("server_error", "x", status=503))
    assert not rate_limited(OperatorProblemError("quota", "the account ran out"))


def test_per_kind_limits_override_the_default() -> None:
    settings = Settings(upstream_rate_limit=20, upstream_rate_limits="gemini=2, gateway=0")
    assert limits(settings) == (20, {"gemini": 2.0, "gateway": 0.0})


@pytest.mark.parametrize("value", ["gemini", "=2", "gemini=-1", "gemini=fast", "gemini=inf"])
def test_unreadable_per_kind_limits_are_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="UPSTREAM_RATE_LIMITS"):
        Settings(upstream_rate_limits=value)
