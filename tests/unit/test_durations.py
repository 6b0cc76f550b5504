"""The progress shown for a provider without one: from the learned duration, never 100."""

from worker.durations import AT_EXPECTED, DEFAULT_SECONDS, HIGHEST, LearnedDurations


def test_progress_grows_to_the_expected_time_then_creeps_below_100():
    durations = LearnedDurations()
    shown = [durations.progress("veo", t) for t in (0, 30, 60, 120, 240, 1e6)]

    assert shown[0] == 0
    assert shown == sorted(shown)
    assert durations.progress("veo", DEFAULT_SECONDS) == AT_EXPECTED
    assert shown[-1] == HIGHEST < 100


def test_each_model_learns_its_own_duration_from_finished_tasks():
    durations = LearnedDurations()
    durations.learn("fast", 40.0)
    for _ in range(30):
        durations.learn("fast", 20.0)
    durations.learn("fast", float("nan"))
    durations.learn("fast", -5.0)

    assert 20.0 <= durations.expected("fast") < 21.0
    assert durations.expected("slow") == DEFAULT_SECONDS
    assert durations.progress("fast", durations.expected("fast")) == AT_EXPECTED
