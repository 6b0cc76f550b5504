"""Adaptive poll pacing and transient-error backoff (docs/architecture.md, Polling)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.durations import PRIOR, Distribution
from worker.schedule import (
    CATCH_UP_SHARE,
    P_HIGH,
    P_LOW,
    Pacing,
    backoff,
    fixed_polling_gets,
    next_poll_delay,
    planned_gets,
    poll_plan,
    poll_times,
)

PACING = Pacing(first_delay=10.0, min_interval=2.0, max_interval=30.0, retry_base=2.0)

elapsed_times = st.floats(min_value=0, max_value=7 * 24 * 3600, allow_nan=False)
progresses = st.one_of(st.none(), st.integers(min_value=0, max_value=100))


@pytest.mark.parametrize("elapsed", [0.0, 1.0, 5.5, 9.99])
def test_nothing_before_first_delay(elapsed: float) -> None:
    delay = next_poll_delay(PACING, elapsed, None)
    assert elapsed + delay == pytest.approx(PACING.first_delay)


def test_progress_is_ignored_before_first_delay() -> None:
    assert next_poll_delay(PACING, 4.0, 99) == pytest.approx(6.0)


@given(elapsed=elapsed_times, progress=progresses)
def test_first_poll_never_comes_before_first_delay(elapsed: float, progress: int | None) -> None:
    assert elapsed + next_poll_delay(PACING, elapsed, progress) >= PACING.first_delay - 1e-9


@given(elapsed=st.floats(min_value=10, max_value=7 * 24 * 3600), progress=progresses)
def test_delay_after_first_delay_is_clamped_to_min_and_max(
    elapsed: float, progress: int | None
) -> None:
    delay = next_poll_delay(PACING, elapsed, progress)
    assert PACING.min_interval <= delay <= PACING.max_interval


@given(
    elapsed=st.floats(min_value=10, max_value=7 * 24 * 3600),
    progress=progresses,
    late=st.floats(min_value=0, max_value=3600),
)
def test_a_late_hop_takes_at_most_a_share_of_the_cadence_off_and_nothing_else(
    elapsed: float, progress: int | None, late: float
) -> None:
    on_time = next_poll_delay(PACING, elapsed, progress)
    delay = next_poll_delay(PACING, elapsed, progress, late=late)
    assert on_time - min(late, CATCH_UP_SHARE * on_time) - 1e-9 <= delay <= on_time
    assert delay >= (1 - CATCH_UP_SHARE) * PACING.min_interval - 1e-9


@pytest.mark.parametrize(
    ("elapsed", "progress", "late", "taken_off"),
    [
        (100.0, None, 0.5, 0.5),  # the cadence: counted from the due time
        (100.0, None, 60.0, CATCH_UP_SHARE),  # at most a share of it (times the interval)
        (4.0, None, 0.5, 0.0),  # the wait for the plan's start is measured from now
        (100.0, 90, 0.5, 0.0),  # so is a progress prediction (half of ~11 s left)
        (100.0, 1, 0.5, 0.5),  # one capped at the max interval is the cadence again
    ],
)
def test_what_a_late_hop_takes_off(
    elapsed: float, progress: int | None, late: float, taken_off: float
) -> None:
    on_time = next_poll_delay(PACING, elapsed, progress)
    delay = next_poll_delay(PACING, elapsed, progress, late=late)
    if late > 10:
        taken_off *= on_time
    assert on_time - delay == pytest.approx(taken_off)


def test_before_anything_is_learned_the_prior_polls_about_every_budget_interval() -> None:
    delays = {round(next_poll_delay(PACING, t, None), 6) for t in (10, 20, 50, 100, 140)}
    assert len(delays) == 1
    assert 0.9 * PACING.budget_interval <= delays.pop() <= PACING.budget_interval


def test_long_elapsed_is_clamped_to_max_interval() -> None:
    assert next_poll_delay(PACING, 3600.0, None) == PACING.max_interval


def test_progress_predicting_imminent_finish_shortens_the_interval() -> None:
    without = next_poll_delay(PACING, 100.0, None)
    nearly_done = next_poll_delay(PACING, 100.0, 90)
    # 100 s for 90 % → ~11 s left; poll at about half of that, not after 20 s.
    assert nearly_done < without
    assert nearly_done == pytest.approx(0.5 * 100 * 10 / 90)


def test_early_progress_lengthens_the_interval_up_to_the_max() -> None:
    """Changed on purpose: a reading that predicts a distant finish skips dense polls."""
    assert next_poll_delay(PACING, 100.0, 10) == PACING.max_interval
    assert next_poll_delay(PACING, 100.0, 75) == pytest.approx(0.5 * 100 * 25 / 75)


@pytest.mark.parametrize("progress", [0, 100])
def test_progress_of_zero_or_hundred_gives_no_prediction(progress: int) -> None:
    assert next_poll_delay(PACING, 100.0, progress) == next_poll_delay(PACING, 100.0, None)


def test_imminent_finish_never_polls_faster_than_min_interval() -> None:
    assert next_poll_delay(PACING, 100.0, 99) == PACING.min_interval


def test_backoff_grows_exponentially() -> None:
    assert [backoff(PACING, attempt) for attempt in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]


def test_backoff_treats_attempt_zero_like_the_first() -> None:
    assert backoff(PACING, 0) == backoff(PACING, 1) == PACING.retry_base


def test_backoff_is_capped() -> None:
    cap = PACING.max_interval * 4
    assert backoff(PACING, 7) == cap
    assert backoff(PACING, 60) == cap


def test_backoff_stays_capped_for_a_very_long_error_streak() -> None:
    """A multi-day outage under a long task timeout reaches streaks above 1024 (one
    poll every 120 s for ~34 h); ``2.0 ** 1024`` must not overflow."""
    assert backoff(PACING, 1025) == PACING.max_interval * 4
    assert backoff(PACING, 10_000) == PACING.max_interval * 4


def test_backoff_honours_longer_retry_after() -> None:
    assert backoff(PACING, 1, retry_after=45.0) == 45.0


def test_backoff_keeps_exponential_delay_when_retry_after_is_shorter() -> None:
    assert backoff(PACING, 3, retry_after=1.0) == 8.0


@given(attempt=st.integers(min_value=0, max_value=100_000))
def test_backoff_is_positive_and_never_above_cap_without_retry_after(attempt: int) -> None:
    assert 0 < backoff(PACING, attempt) <= PACING.max_interval * 4


def test_expected_callback_makes_polling_a_sparser_safety_net():
    plain = Pacing(first_delay=10, min_interval=2, max_interval=30, retry_base=2)
    with_callback = Pacing(10, 2, 30, 2, callback_factor=4)
    assert next_poll_delay(with_callback, 5, None) == next_poll_delay(plain, 5, None)  # first poll
    assert next_poll_delay(with_callback, 20, None) == 4 * next_poll_delay(plain, 20, None)
    assert next_poll_delay(with_callback, 10_000, None) == 120


@pytest.mark.parametrize("retry_after", [None, 0.0, -5.0, float("nan"), float("-inf")])
def test_backoff_ignores_a_missing_zero_or_negative_retry_after(retry_after) -> None:
    assert backoff(PACING, 3, retry_after=retry_after) == backoff(PACING, 3)


def test_backoff_caps_a_huge_retry_after() -> None:
    capped = Pacing(10.0, 2.0, 30.0, 2.0, retry_after_cap=300.0)

    assert backoff(capped, 1, retry_after=3600.0) == 300.0
    assert backoff(capped, 1, retry_after=float("inf")) == backoff(capped, 1)


@given(
    attempt=st.integers(min_value=1, max_value=1000),
    retry_after=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_backoff_is_always_within_its_bounds(attempt: int, retry_after: float | None) -> None:
    delay = backoff(PACING, attempt, retry_after)

    assert 0 < delay <= max(PACING.max_interval * 4, PACING.retry_after_cap)


# --- the plan around a learned distribution -----------------------------------------------


def _lognormal(median: float, sigma: float, n: int = 200, seed: int = 7) -> Distribution:
    rng = random.Random(seed)
    return Distribution(
        tuple(sorted(rng.lognormvariate(math.log(median), sigma) for _ in range(n))), True
    )


VEO = _lognormal(150, 0.45)


@given(elapsed=elapsed_times, progress=progresses)
def test_no_poll_before_the_low_quantile(elapsed: float, progress: int | None) -> None:
    delay = next_poll_delay(PACING, elapsed, progress, VEO)
    assert elapsed + delay >= VEO.low_quantile(P_LOW) - 1e-9


@given(elapsed=st.floats(min_value=0, max_value=7 * 24 * 3600), progress=progresses)
def test_intervals_after_the_first_poll_stay_within_min_and_max(
    elapsed: float, progress: int | None
) -> None:
    elapsed = max(elapsed, VEO.low_quantile(P_LOW))
    delay = next_poll_delay(PACING, elapsed, progress, VEO)
    assert PACING.min_interval <= delay <= PACING.max_interval


def test_dense_between_the_quantiles_then_growing_intervals_in_the_tail() -> None:
    plan = poll_plan(PACING, VEO)
    assert plan.start == pytest.approx(VEO.low_quantile(P_LOW))
    assert plan.dense_until == pytest.approx(VEO.quantile(P_HIGH))
    dense = [next_poll_delay(PACING, t, None, VEO) for t in (plan.start, 150, plan.dense_until)]
    assert dense == [plan.dense] * 3
    tail = [next_poll_delay(PACING, plan.dense_until + t, None, VEO) for t in range(1, 400, 7)]
    assert tail == sorted(tail) and tail[0] > plan.dense and tail[-1] == PACING.max_interval


def test_the_dense_interval_spends_no_more_gets_than_fixed_polling_at_the_budget() -> None:
    for expected in (VEO, _lognormal(40, 0.3), _lognormal(300, 0.8), PRIOR):
        plan = poll_plan(PACING, expected)
        budget = fixed_polling_gets(expected.seconds, PACING.budget_interval)
        assert planned_gets(expected.seconds, plan) <= budget + 1e-6
        # Walking the schedule itself (deadline far away) agrees with the estimate.
        walked = [len(poll_times(PACING, expected, 1e9, d)) for d in expected.seconds]
        assert sum(walked) / len(walked) <= budget * 1.05


def test_a_tighter_distribution_polls_denser_near_its_finish() -> None:
    assert poll_plan(PACING, _lognormal(150, 0.15)).dense < poll_plan(PACING, VEO).dense


@pytest.mark.parametrize("deadline", [5.0, 70.0, 151.3, 600.0])
def test_the_last_poll_lands_on_the_deadline(deadline: float) -> None:
    times = poll_times(PACING, VEO, deadline)
    assert times[-1] == pytest.approx(deadline)
    assert times == sorted(times) and all(t <= deadline + 1e-9 for t in times)


def test_progress_predicting_a_late_finish_cannot_stretch_the_tail() -> None:
    late = VEO.quantile(P_HIGH) + 100
    assert next_poll_delay(PACING, late, 5, VEO) == next_poll_delay(PACING, late, None, VEO)
