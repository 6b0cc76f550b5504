"""The webhook retry schedule: a receiver's Retry-After lengthens waits, within bounds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from worker.jobs.deliver import next_delay, schedule_end

SCHEDULE = [5.0, 300.0, 1800.0, 7200.0, 18000.0] + [36000.0] * 7
END = schedule_end(SCHEDULE, 20.0)


def test_the_end_allows_for_jitter_and_attempt_time() -> None:
    assert schedule_end(SCHEDULE, 20.0) == sum(SCHEDULE) * 1.1 + 12 * 20.0


def test_retry_after_zero_keeps_the_step() -> None:
    for attempt, step in enumerate(SCHEDULE, start=1):
        delay = next_delay(SCHEDULE, attempt, 0.0, 0.0, END)
        assert delay is not None and step * 0.9 <= delay <= step * 1.1


def test_a_longer_retry_after_is_honoured() -> None:
    assert next_delay(SCHEDULE, 1, 120.0, 0.0, END) == 120.0


def test_a_huge_retry_after_means_one_last_attempt_at_the_end() -> None:
    age = 10.0
    assert next_delay(SCHEDULE, 1, 1e12, age, END) == END - age
    assert next_delay(SCHEDULE, 2, None, END, END) is None


def test_the_schedule_is_used_up_after_its_last_step() -> None:
    assert next_delay(SCHEDULE, len(SCHEDULE) + 1, None, 0.0, END) is None


@given(st.lists(st.one_of(st.none(), st.floats(0, 1e12)), min_size=1, max_size=40))
def test_any_retry_afters_stay_within_the_schedule(retry_afters: list[float | None]) -> None:
    """Whatever receivers answer: at most one attempt per step, none after the end, and
    no wait shorter than 90 % of its step."""
    age, attempt = 0.0, 1
    for retry_after in retry_afters:
        delay = next_delay(SCHEDULE, attempt, retry_after, age, END)
        if delay is None:
            break
        assert delay > 0
        assert delay >= min(SCHEDULE[attempt - 1] * 0.9, END - age)
        age += delay
        attempt += 1
        assert age <= END
    assert attempt <= len(SCHEDULE) + 1
