"""Learned duration distributions (worker/durations.py): bounded, robust to outliers, a
prior until a few are known, and no error when Redis cannot be reached; the progress shown
for a provider without one grows to its median, never to 100."""

from __future__ import annotations

import math
import random
from statistics import NormalDist

import pytest
from redis.asyncio import Redis

from cli.supervise import free_port
from worker.durations import (
    AT_EXPECTED,
    DEFAULT_SECONDS,
    HIGHEST,
    MIN_OBSERVATIONS,
    PRIOR,
    Distribution,
    LearnedDurations,
)


def _unreachable() -> Redis:
    """A real client for a port nothing listens on (connection refused at once)."""
    return Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)


def test_progress_grows_to_the_expected_time_then_creeps_below_100():
    durations = LearnedDurations()
    shown = [durations.progress("sim", "veo", t) for t in (0, 30, 60, 120, 240, 1e6)]

    assert shown[0] == 0
    assert shown == sorted(shown)
    assert durations.progress("sim", "veo", DEFAULT_SECONDS) == AT_EXPECTED
    assert shown[-1] == HIGHEST < 100


async def test_the_prior_stands_until_a_few_are_learned_then_the_median_counts():
    durations = LearnedDurations()
    for _ in range(MIN_OBSERVATIONS - 1):
        await durations.learn(None, "sim", "fast", 20.0)
    assert durations.distribution("sim", "fast") is PRIOR
    assert durations.expected("sim", "fast") == DEFAULT_SECONDS

    await durations.learn(None, "sim", "fast", 20.0)
    assert durations.distribution("sim", "fast").learned
    assert durations.expected("sim", "fast") == 20.0
    assert durations.progress("sim", "fast", 20.0) == AT_EXPECTED
    # Another model, and the same model on another provider kind, learn their own.
    assert durations.expected("gemini", "fast") == DEFAULT_SECONDS
    assert durations.expected("sim", "slow") == DEFAULT_SECONDS


async def test_outliers_move_the_quantiles_by_a_rank_and_implausible_values_not_at_all():
    durations = LearnedDurations()
    for _ in range(30):
        await durations.learn(None, "sim", "m", 100.0)
    for seconds in (float("nan"), float("inf"), -5.0, 0.2, 10 * 24 * 3600.0):
        await durations.learn(None, "sim", "m", seconds)
    await durations.learn(None, "sim", "m", 20_000.0)  # one stuck task: plausible

    learned = durations.distribution("sim", "m")
    assert len(learned.seconds) == 31
    assert learned.median == learned.quantile(0.9) == 100.0


async def test_only_the_newest_observations_are_kept():
    durations = LearnedDurations(keep=10)
    for seconds in range(1, 31):
        await durations.learn(None, "sim", "m", float(seconds))
    assert durations.distribution("sim", "m").seconds == tuple(float(s) for s in range(21, 31))


async def test_an_unreachable_redis_keeps_what_this_worker_learned_and_raises_nothing():
    redis = _unreachable()
    clock = [0.0]
    durations = LearnedDurations(clock=lambda: clock[0])
    try:
        assert await durations.refresh(redis, "sim", "m") is PRIOR
        for _ in range(MIN_OBSERVATIONS):
            await durations.learn(redis, "sim", "m", 42.0)
        clock[0] += 60
        assert (await durations.refresh(redis, "sim", "m")).median == 42.0
    finally:
        await redis.aclose()


def test_expected_finish_is_the_median_of_the_tasks_still_running():
    durations = LearnedDurations()
    median = PRIOR.median
    assert durations.expected_finish_in("sim", "m", 0.0) == median
    later = durations.expected_finish_in("sim", "m", median)
    # Past the median, the ones still running finish later than the overall median.
    assert later > 0
    assert durations.expected_finish_in("sim", "m", 1e9) == 0.0
    times = [durations.expected_finish_in("sim", "m", t) + t for t in range(0, 2000, 50)]
    assert times == sorted(times) and all(math.isfinite(t) for t in times)


def _sample(n: int, seed: int, median: float = 150.0, sigma: float = 0.45) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(median), sigma) for _ in range(n)]


def test_the_low_quantile_of_tens_of_lognormal_durations_is_steadier_and_earlier():
    true_p1 = 150.0 * math.exp(0.45 * NormalDist().inv_cdf(0.01))
    estimates, samples = [], []
    for seed in range(200):
        learned = Distribution(tuple(sorted(_sample(40, seed))), learned=True)
        estimates.append(learned.low_quantile(0.01) / true_p1)
        samples.append(learned.quantile(0.01) / true_p1)
        assert estimates[-1] <= samples[-1]
    estimates.sort()
    samples.sort()
    # The sample's own p1 is late in one run of two and up to 1.55x in one of twenty (a
    # first poll that late is seconds of lag for every task finishing before it).
    assert samples[100] > 1.1 and samples[189] > 1.4
    assert estimates[10] >= 0.65 and estimates[100] <= 1.05 and estimates[189] <= 1.3


def test_the_low_quantile_is_moved_little_by_outliers():
    seconds = _sample(60, 1)
    clean = Distribution(tuple(sorted(seconds)), learned=True).low_quantile(0.01)
    # Five stuck tasks reported at ten times the median: the fit's centre and spread barely move.
    slow = Distribution(tuple(sorted(seconds[:55] + [1500.0] * 5)), learned=True)
    assert slow.low_quantile(0.01) == pytest.approx(clean, rel=0.15)


def test_the_low_quantile_of_one_observation_is_that_observation():
    assert Distribution((42.0,), learned=True).low_quantile(0.01) == 42.0
