"""How long a (provider kind, model)'s videos take upstream, learned from finished tasks and
shared by every worker through Redis; and the progress a running task shows when its
provider reports none (the Gemini API's operations have no progress field).

Each finished task teaches its submit-to-finish seconds. Redis keeps the newest `KEEP` of
them per key in a capped list (``gv:durations:<kind>:<model>``: LPUSH + LTRIM + EXPIRE in
one Lua script, one round trip). Each worker caches the list and reads it again at most every
`REFRESH_SECONDS` per key, so almost every poll hop pays no Redis read. What the worker
learns itself counts at once in its own cache.

Quantiles, not means: one stuck task of an hour moves the median of 200 by one rank, not
the mean by 18 s; observations outside `_PLAUSIBLE` (a clock jump, a bug) are dropped.

Before `MIN_OBSERVATIONS` exist (a new model, an empty Redis) or while Redis cannot be
reached and nothing is cached, the distribution is the *prior*: a lognormal with median
`DEFAULT_SECONDS` and a wide spread (Google quotes 11 s to 6 minutes for Veo), given as
`PRIOR_POINTS` of its quantiles so that every consumer handles prior and learned alike.
A Redis outage never raises here: writes are dropped, reads keep the cache (or the prior).

The shown progress grows linearly to `AT_EXPECTED` % at the distribution's median and then
creeps towards 99 %: never 100 % before the video is there.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from statistics import NormalDist
from statistics import median as median_of
from typing import cast

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

KEY_PREFIX = "gv:durations:"
# Observations kept per (kind, model): ~the last day of a busy model, 200 small strings.
KEEP = 200
# A key no task has finished on for this long is forgotten (a renamed or retired model).
KEY_TTL_SECONDS = 30 * 24 * 3600
REFRESH_SECONDS = 30.0
# Below this many observations the prior stands (p5 of three tasks is their minimum).
MIN_OBSERVATIONS = 5
# A hop never waits on Redis longer than this for the distribution (a hung Redis).
REDIS_TIMEOUT_SECONDS = 1.0

DEFAULT_SECONDS = 120.0
PRIOR_SIGMA = 0.8
PRIOR_POINTS = 41
AT_EXPECTED = 90
HIGHEST = 99
_PLAUSIBLE = (1.0, 24 * 3600.0)
# One observation in, the oldest beyond KEEP out, the key's life renewed: one round trip.
_RECORD = """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
"""


def _plausible(seconds: float) -> bool:
    return math.isfinite(seconds) and _PLAUSIBLE[0] <= seconds <= _PLAUSIBLE[1]


@dataclass(frozen=True)
class Distribution:
    """Submit-to-finish seconds of one (kind, model): ``seconds`` sorted ascending and
    never empty; ``learned`` is False for the prior."""

    seconds: tuple[float, ...]
    learned: bool
    # Derived values cached per distribution (worker/schedule.py keeps its plans here).
    memo: dict[object, object] = field(default_factory=dict, compare=False, repr=False)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0..1), linear between closest ranks."""
        position = (len(self.seconds) - 1) * min(1.0, max(0.0, q))
        low = int(position)
        high = min(low + 1, len(self.seconds) - 1)
        return self.seconds[low] + (self.seconds[high] - self.seconds[low]) * (position - low)

    @property
    def median(self) -> float:
        return self.quantile(0.5)

    def low_quantile(self, q: float) -> float:
        """A low ``q`` quantile (a few %) that tens of observations can estimate: the lower
        of the sample's own and that of a lognormal fitted robustly (the median and the
        MAD of the log seconds; Veo's durations are about lognormal).

        The sample alone has one or two observations down there, so its estimate swings
        with which ones it holds, and a task that finishes before the first poll waits
        for it: a start estimated late costs the lag's upper percentiles. The fit is
        steady and moved little by outliers either way; the lower of the two errs on an
        early first poll (a GET), not on a late one (seconds of lag)."""
        if len(self.seconds) < 2:
            return self.quantile(q)
        logs = [math.log(max(s, 1e-3)) for s in self.seconds]
        center = median_of(logs)
        spread = _MAD_TO_SIGMA * median_of(abs(x - center) for x in logs)
        fitted = math.exp(center + NormalDist().inv_cdf(min(max(q, 1e-6), 0.5)) * spread)
        return min(self.quantile(q), fitted)

    def remaining(self, elapsed: float) -> float:
        """Seconds from ``elapsed`` until the median finish of the tasks still running
        then (the conditional median); 0 past the longest one seen."""
        first = bisect.bisect_right(self.seconds, elapsed)
        if first == len(self.seconds):
            return 0.0
        position = first + (len(self.seconds) - 1 - first) / 2
        low = int(position)
        high = min(low + 1, len(self.seconds) - 1)
        median = self.seconds[low] + (self.seconds[high] - self.seconds[low]) * (position - low)
        return max(0.0, median - elapsed)


# The MAD of a normal distribution times this is its standard deviation.
_MAD_TO_SIGMA = 1.4826


def prior(median: float = DEFAULT_SECONDS, sigma: float = PRIOR_SIGMA) -> Distribution:
    """The lognormal prior as `PRIOR_POINTS` evenly spaced quantiles."""
    normal = NormalDist()
    points = (
        median * math.exp(sigma * normal.inv_cdf((i + 0.5) / PRIOR_POINTS))
        for i in range(PRIOR_POINTS)
    )
    return Distribution(tuple(points), learned=False)


PRIOR = prior()


def key(kind: str | None, model: str) -> str:
    """The Redis list of one (provider kind, model)."""
    return f"{KEY_PREFIX}{kind or '-'}:{model}"


class LearnedDurations:
    """Per (provider kind, model) duration distributions: learned by every worker, shared
    through Redis, cached here."""

    def __init__(
        self,
        keep: int = KEEP,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keep = keep
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._samples: dict[str, list[float]] = {}  # newest first, as in Redis
        self._cached: dict[str, Distribution] = {}
        self._read_at: dict[str, float] = {}

    def distribution(self, kind: str | None, model: str) -> Distribution:
        """The cached distribution (no I/O): learned once `MIN_OBSERVATIONS` are known."""
        name = key(kind, model)
        cached = self._cached.get(name)
        if cached is None:
            samples = self._samples.get(name, [])
            cached = (
                Distribution(tuple(sorted(samples)), learned=True)
                if len(samples) >= MIN_OBSERVATIONS
                else PRIOR
            )
            self._cached[name] = cached
        return cached

    async def refresh(self, redis: Redis, kind: str | None, model: str) -> Distribution:
        """:meth:`distribution` after reading Redis if this key's copy is older than
        `REFRESH_SECONDS` (at most one read per key per interval, even when it fails:
        an unreachable Redis keeps the cache and is not asked again at every hop)."""
        name = key(kind, model)
        now = self._clock()
        read_at = self._read_at.get(name)
        if read_at is None or now - read_at >= self._refresh_seconds:
            self._read_at[name] = now
            try:
                async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
                    # redis-py types lrange for its sync and async clients at once.
                    reply = redis.lrange(name, 0, self._keep - 1)
                    raw: list[bytes | str] = await cast("Awaitable[list[bytes | str]]", reply)
            except (RedisError, OSError, TimeoutError) as exc:
                log.debug("durations_unreadable", key=name, error=type(exc).__name__)
            else:
                shared = [s for s in map(_number, raw) if s is not None and _plausible(s)]
                # Redis holds what every worker learned; an empty list (flushed, expired)
                # must not erase what this worker learned meanwhile.
                if shared or not self._samples.get(name):
                    self._samples[name] = shared
                    self._cached.pop(name, None)
        return self.distribution(kind, model)

    async def learn(
        self, redis: Redis | None, kind: str | None, model: str, seconds: float
    ) -> None:
        """Take one finished task's submit-to-finish ``seconds``: at once in this worker,
        and in Redis for the others (one round trip; lost without error when Redis is
        unreachable). Implausible values are ignored."""
        if not _plausible(seconds):
            return
        name = key(kind, model)
        samples = self._samples.setdefault(name, [])
        samples.insert(0, seconds)
        del samples[self._keep :]
        self._cached.pop(name, None)
        if redis is None:
            return
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
                argv = (f"{seconds:.3f}", str(self._keep), str(KEY_TTL_SECONDS))
                reply = redis.eval(_RECORD, 1, name, *argv)
                await cast("Awaitable[object]", reply)
        except (RedisError, OSError, TimeoutError) as exc:
            log.debug("durations_unwritable", key=name, error=type(exc).__name__)

    def expected(self, kind: str | None, model: str) -> float:
        """The median submit-to-finish seconds."""
        return self.distribution(kind, model).median

    def expected_finish_in(self, kind: str | None, model: str, elapsed: float) -> float:
        """Seconds from now until a task of (``kind``, ``model``) submitted ``elapsed``
        seconds ago is expected to finish: the median of the learned durations longer
        than ``elapsed``, minus ``elapsed``; 0 when it has outlived every one seen (it
        may finish any moment). No I/O: the worker's cached distribution."""
        return self.distribution(kind, model).remaining(max(0.0, elapsed))

    def progress(self, kind: str | None, model: str, elapsed: float) -> int:
        """The percentage to show `elapsed` seconds after the submit: 0 to `HIGHEST`."""
        if not math.isfinite(elapsed) or elapsed <= 0:
            return 0
        expected = self.expected(kind, model)
        if elapsed <= expected:
            return int(AT_EXPECTED * elapsed / expected)
        late = (elapsed - expected) / expected
        return min(HIGHEST, AT_EXPECTED + int((HIGHEST - AT_EXPECTED) * (1 - math.exp(-late))))


def _number(raw: bytes | str) -> float | None:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None
