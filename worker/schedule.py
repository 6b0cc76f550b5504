"""When to look at an upstream task next (docs/architecture.md, Polling), around the
expected finish that the (provider kind, model)'s learned durations predict
(worker/durations.py).

The plan for one distribution of submit-to-finish seconds D:

- **nothing early**: no poll before ``start`` = the `P_LOW` (1 %) quantile of D, estimated
  by `Distribution.low_quantile` (before anything is learned, ``POLL_FIRST_DELAY``); not the
  p5: the tasks that finish before the first poll wait for it, and if they were 5 % their
  wait would be the p95 lag. Not the p2 of the sample either: over 30 tasks, two or more
  finished before it in about one run in five (simulated on the simulator's durations and
  30-90 learned ones; seen in `bench.polling` as a p95 lag several times the p50), with
  the p1 estimated as ``low_quantile`` does in about one in twenty;
- **dense near the likely finish**: from ``start`` to ``dense_until`` = the `P_HIGH`
  quantile, one poll every ``dense`` seconds;
- **sparse in the tail**: past ``dense_until`` the interval grows by `TAIL_GROWTH` per
  second spent there (``dense + 0.2 * (elapsed - dense_until)``), up to the max;
- every interval within [``POLL_MIN_INTERVAL``, ``POLL_MAX_INTERVAL``] (both times
  `Pacing.callback_factor` when callbacks arrive); the caller bounds each delay by the task's
  deadline so that the last hop lands on it; backoff and Retry-After are unchanged.

**The dense interval** is derived, not tuned: it is the smallest one for which the
expected number of upstream GETs per task is no more than what fixed polling every
``POLL_BUDGET_INTERVAL`` seconds (10 s) makes on the same distribution. Fixed polling at
T makes ``ceil(D / T)`` GETs for a task of D seconds (polls at T, 2T, ... until one sees
it finished), so its budget is ``B = E[ceil(D / T)]`` over the learned observations. The
plan makes, for a task of D seconds (s = start, h = dense_until, d = dense):

- ``1`` when D <= s (the first poll sees it finished);
- ``1 + (D - s) / d + 1/2`` when s < D <= h (one dense poll per d, the last one lands on
  average half an interval after the finish);
- ``1 + (h - s) / d + 1/2 + (1 / g) * ln(1 + g * (D - h) / d) + 1/2`` when D > h: the tail's
  intervals ``d + g * (e - h)`` need that many polls to cover ``D - h`` (g = `TAIL_GROWTH`;
  the max cap only removes polls, so this is an upper bound).

``G(d)``, the mean of that over the observations, falls as d grows; the plan takes the
root of ``G(d) = B`` (bisection, once per distribution and pacing, cached), clamped to
[min, max]. Skipping the polls before s is what pays for the dense ones: fixed polling
spends about ``s / T`` GETs on every task before any can have finished.

**What the distribution alone cannot do.** With only the distribution, a p95 lag of
half fixed polling's at the same GET budget is out of reach for Veo-like spreads: 95 %
of tasks need a poll within L after their finish, the cheapest cover is a poll every L
from about the p5 on (a poll at t costs P(D > t)), which costs ``E[(D - p5)+] / L`` GETs;
for a lognormal with sigma 0.45 that is L ~ 0.6 T at the budget. **Reported progress** (a
per-task prediction) closes the gap: from ``start`` on, a reading ``p`` at ``elapsed``
predicts ``elapsed * (100 - p) / p`` seconds left (linear progress from the submit; an
overestimate when the upstream starts counting late) and the next poll comes after
`PROGRESS_SHARE` of that, within [min, max] (and never later than the tail's interval):
halving the predicted rest reaches the finish in about ``log2(rest at start / min
interval)`` polls, with a lag below the min interval. A progress of 0 or 100 predicts
nothing. Before ``start`` there is no reading to use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from worker.durations import PRIOR, Distribution

# The quantiles of the learned durations that bound the dense polling. P_LOW is well below
# 5 %: a task that finishes before the first poll waits for it, so if 5 % did, the p95 of
# the completion lag would be that wait (module docstring).
P_LOW = 0.01
P_HIGH = 0.95
# How fast the interval grows past P_HIGH: seconds of interval per second spent there.
TAIL_GROWTH = 0.2
# The share of the remaining time that reported progress predicts, waited before the
# next look (halving: converges on the finish without passing it by much).
PROGRESS_SHARE = 0.5
# How much of a cadence interval a hop that ran late may take off the next one: enough for
# the jitter of a busy worker (a second in 30 s), not enough to poll much faster than
# POLL_MIN_INTERVAL after an outage or a slow answer.
CATCH_UP_SHARE = 0.1
_BISECTIONS = 40


@dataclass(frozen=True)
class Pacing:
    first_delay: float
    min_interval: float
    max_interval: float
    retry_base: float
    # > 1 when the upstream will call our notify_hook: polling is then only a safety net
    # for lost callbacks, so it can be that many times sparser.
    callback_factor: float = 1.0
    # The longest wait a server's Retry-After can ask for (seconds).
    retry_after_cap: float = 300.0
    # Polls per task are budgeted as many as fixed polling every this many seconds makes.
    budget_interval: float = 10.0


@dataclass(frozen=True)
class PollPlan:
    """Seconds since the submit: no poll before ``start``; every ``dense`` seconds until
    ``dense_until``; growing intervals after."""

    start: float
    dense_until: float
    dense: float


def fixed_polling_gets(seconds: tuple[float, ...], interval: float) -> float:
    """Mean GETs per task that polling every ``interval`` seconds from the submit makes
    on these durations (the budget)."""
    return sum(max(1, math.ceil(d / interval)) for d in seconds) / len(seconds)


def planned_gets(seconds: tuple[float, ...], plan: PollPlan) -> float:
    """Mean GETs per task the plan makes on these durations (module docstring)."""
    s, h, d = plan.start, plan.dense_until, plan.dense
    total = 0.0
    for duration in seconds:
        if duration <= s:
            total += 1
        elif duration <= h:
            total += 1.5 + (duration - s) / d
        else:
            tail = math.log1p(TAIL_GROWTH * (duration - h) / d) / TAIL_GROWTH
            total += 2 + (h - s) / d + tail
    return total / len(seconds)


def poll_plan(pacing: Pacing, expected: Distribution) -> PollPlan:
    """The plan for ``expected`` under ``pacing`` (cached on the distribution)."""
    memo_key = ("plan", pacing.first_delay, pacing.min_interval, pacing.max_interval,
                pacing.budget_interval)  # fmt: skip
    cached = expected.memo.get(memo_key)
    if isinstance(cached, PollPlan):
        return cached
    if expected.learned:
        start = max(pacing.min_interval, expected.low_quantile(P_LOW))
    else:
        start = pacing.first_delay
    until = max(start, expected.quantile(P_HIGH))
    budget = fixed_polling_gets(expected.seconds, pacing.budget_interval)
    low, high = pacing.min_interval, max(pacing.min_interval, pacing.max_interval)

    def gets(dense: float) -> float:
        return planned_gets(expected.seconds, PollPlan(start, until, dense))

    if gets(low) <= budget:
        dense = low
    elif gets(high) > budget:
        dense = high
    else:
        for _ in range(_BISECTIONS):
            middle = (low + high) / 2
            low, high = (low, middle) if gets(middle) <= budget else (middle, high)
        dense = high
    plan = PollPlan(start, until, dense)
    expected.memo[memo_key] = plan
    return plan


def next_poll_delay(
    pacing: Pacing,
    elapsed: float,
    progress: int | None,
    expected: Distribution | None = None,
    late: float = 0.0,
) -> float:
    """Seconds from now until the next poll of a task submitted ``elapsed`` seconds ago
    whose last answer reported ``progress`` (None: no reading), for durations
    ``expected`` (None: the prior). The caller bounds it by the task's deadline.

    ``late``: how long after it was due this hop ran (seconds). An interval of the
    cadence counts from the due time, so a late hop takes its lateness, at most
    `CATCH_UP_SHARE` of the interval, off the next one (fixed-rate: hops that ran late do
    not push their tasks' polls back for good and bunch them). The wait for the plan's
    start and a progress prediction are measured from now: nothing is taken off them.
    """
    plan = poll_plan(pacing, expected or PRIOR)
    if elapsed < plan.start:
        return plan.start - elapsed
    if elapsed <= plan.dense_until:
        interval, ceiling = plan.dense, pacing.max_interval
    else:
        interval = plan.dense + TAIL_GROWTH * (elapsed - plan.dense_until)
        ceiling = interval
    predicted = False
    if progress is not None and 0 < progress < 100:
        remaining = elapsed * (100 - progress) / progress
        predicted = PROGRESS_SHARE * remaining < ceiling
        interval = min(ceiling, PROGRESS_SHARE * remaining)
    factor = pacing.callback_factor
    floor = pacing.min_interval * factor
    delay = max(floor, min(pacing.max_interval * factor, interval * factor))
    if predicted and delay > floor:
        return delay
    return caught_up(delay, late)


def caught_up(delay: float, late: float) -> float:
    """``delay`` less a hop's lateness ``late``, at most `CATCH_UP_SHARE` of it (seconds)."""
    return delay - min(max(0.0, late), CATCH_UP_SHARE * delay)


def poll_times(
    pacing: Pacing, expected: Distribution | None, deadline: float, finish: float = math.inf
) -> list[float]:
    """The instants (seconds since the submit) at which a task without progress readings
    is polled, until a poll at or after ``finish`` sees it finished or the deadline; as
    the poll job does it, no delay passes the deadline: the last poll lands on it."""
    times: list[float] = []
    now = 0.0
    while now < deadline and (not times or times[-1] < finish):
        now += min(next_poll_delay(pacing, now, None, expected), deadline - now)
        times.append(now)
    return times


def backoff(pacing: Pacing, attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff (seconds) for the `attempt`-th transient error in a row.

    A server's Retry-After is honoured up to `pacing.retry_after_cap` when it asks for
    longer than the backoff; a missing, zero or negative one leaves the backoff alone (so
    "Retry-After: 0" cannot turn a retry schedule into a burst). The caller still bounds
    the result by the task's deadline.
    """
    delay = min(pacing.max_interval * 4, pacing.retry_base * 2.0 ** min(max(0, attempt - 1), 30))
    if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
        delay = max(delay, min(retry_after, pacing.retry_after_cap))
    return delay
