import random

import pytest

from simulator.directives import Script
from simulator.timeline import (
    MAX_SECONDS,
    MIN_SECONDS,
    Phase,
    sample_duration,
    snapshot_at,
)

T0 = 1_750_000_000.0


def test_scripted_duration_is_exact_and_scaled():
    rng = random.Random(1)
    assert sample_duration(Script(duration=100), rng, 1.0) == 100
    assert sample_duration(Script(duration=100), rng, 0.01) == pytest.approx(1.0)


def test_default_durations_are_mostly_one_to_five_minutes_and_clipped():
    rng = random.Random(42)
    durations = [sample_duration(Script(), rng, 1.0) for _ in range(2000)]
    assert min(durations) >= MIN_SECONDS
    assert max(durations) <= MAX_SECONDS
    within = sum(60 <= d <= 300 for d in durations) / len(durations)
    assert within > 0.85
    median = sorted(durations)[len(durations) // 2]
    assert 130 < median < 170


def test_default_durations_are_multiplied_by_the_time_scale():
    plain = sample_duration(Script(), random.Random(7), 1.0)
    scaled = sample_duration(Script(), random.Random(7), 0.01)
    assert scaled == pytest.approx(plain * 0.01)


@pytest.mark.parametrize(
    ("elapsed", "phase", "percent"),
    [
        (0, Phase.NOT_START, 0),
        (2.9, Phase.NOT_START, 0),
        (3, Phase.SUBMITTED, 0),
        (7.9, Phase.SUBMITTED, 0),
        (8, Phase.IN_PROGRESS, 0),
        (54, Phase.IN_PROGRESS, 50),
        (99.99, Phase.IN_PROGRESS, 99),
        (100, Phase.SUCCESS, 100),
        (5000, Phase.SUCCESS, 100),
    ],
)
def test_phase_and_progress_follow_the_elapsed_fraction(elapsed, phase, percent):
    snapshot = snapshot_at(T0, 100, failed=False, now=T0 + elapsed)
    assert (snapshot.phase, snapshot.percent) == (phase, percent)


def test_start_and_finish_times_appear_only_once_reached():
    queued = snapshot_at(T0, 100, failed=False, now=T0 + 5)
    running = snapshot_at(T0, 100, failed=False, now=T0 + 50)
    done = snapshot_at(T0, 100, failed=False, now=T0 + 150)
    assert (queued.started_at, queued.finished_at) == (None, None)
    assert (running.started_at, running.finished_at) == (T0 + 8, None)
    assert (done.started_at, done.finished_at) == (T0 + 8, T0 + 100)


def test_status_change_time_is_the_start_of_the_current_phase():
    assert snapshot_at(T0, 100, failed=False, now=T0 + 1).changed_at == T0
    assert snapshot_at(T0, 100, failed=False, now=T0 + 5).changed_at == T0 + 3
    assert snapshot_at(T0, 100, failed=False, now=T0 + 50).changed_at == T0 + 8
    assert snapshot_at(T0, 100, failed=False, now=T0 + 500).changed_at == T0 + 100


def test_failed_task_ends_in_failure():
    assert snapshot_at(T0, 100, failed=True, now=T0 + 50).phase is Phase.IN_PROGRESS
    assert snapshot_at(T0, 100, failed=True, now=T0 + 100).phase is Phase.FAILURE


def test_zero_duration_is_finished_at_once_and_a_clock_going_back_is_harmless():
    assert snapshot_at(T0, 0, failed=False, now=T0).phase is Phase.SUCCESS
    assert snapshot_at(T0, 0, failed=False, now=T0 - 1).phase is Phase.NOT_START
