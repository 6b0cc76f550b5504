"""The global upstream budget (README, "Upstream budget"): all workers together make at
most ``UPSTREAM_RATE_LIMIT`` calls per second to each provider kind (``UPSTREAM_RATE_LIMITS``
overrides it per kind; 0 is no limit).

Every submit, poll and download (the GET that opens the stream: one call however long the
body) takes one token; the key check (``check``, an operator's action) takes none. The
bucket is shared in Redis (``budget.lua``, one EVALSHA per call, Redis TIME as the
clock): it holds ``UPSTREAM_RATE_BURST_SECONDS`` of the effective rate and refills at it.

The effective rate is AIMD: a rate-limit answer (a 429, ``rate_limited`` /
``RESOURCE_EXHAUSTED``) halves it (once per second, down to 5 % of the configured rate);
after 5 quiet seconds it grows back by 5 % of the configured rate per second. It is kept
in the same Redis hash, so every worker follows the same rate.

When the budget is short, polls nearest their task's expected finish go first: a poll more
than `NEAR_SECONDS` from it takes a token only while `RESERVE` of the bucket stays after
it, and is otherwise put off to a random time before it nears the finish (at most
`HORIZON_SECONDS`): the far polls share what the near ones leave. A near
poll (or one past the expected finish) may take the last token, and with none left books
the next free slot up to `HORIZON_SECONDS` ahead: the hop is re-enqueued for that slot,
already paid for (`Deferred`, never a failure nor an upstream error). With the book full
too, it asks again a random half to whole horizon later, so thousands of waiting polls
never spin. Submits and downloads book like near polls but wait in place.

Redis unreachable: each worker falls back to a bucket of its own at the configured rate
(a worker cannot know how many others there are; while Redis is down ARQ hands out no new
jobs, so only the jobs in flight call upstream), waiting in place.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.metrics import UPSTREAM_BUDGET_RATE, UPSTREAM_BUDGET_TOKENS, UPSTREAM_BUDGET_WAIT
from schemas.settings import Settings
from worker.upstream.errors import TransientUpstreamError, UpstreamError

log = structlog.get_logger(__name__)

# A poll further than this (s) from its task's expected finish is served after the others.
NEAR_SECONDS = 30.0
# The share of the bucket a far poll must leave behind.
RESERVE = 0.5
# How far ahead (s) a call may book a slot, and the longest a far poll is put off.
HORIZON_SECONDS = 60.0
# A booked slot this close (s) is waited for in the job rather than by a re-enqueue ...
IN_PLACE_SECONDS = 1.0
# ... and a re-enqueued hop is due this much before its slot (then waits in the job), so
# a busy worker's lateness rarely makes it miss the slot (budget.lua's LATE, 0.5 s).
LEAD_SECONDS = 0.5
# A booking outlives its slot by this much (s); a hop more than 0.5 s late (budget.lua's
# LATE) has lost its slot anyway and asks afresh, so calls never bunch up behind a busy
# worker.
BOOKING_GRACE_SECONDS = 10.0
# The error codes that say "slow down" besides the 429 status itself.
_RATE_LIMIT_CODES = frozenset({"rate_limited", "RESOURCE_EXHAUSTED", "upstream_overloaded"})
_SCRIPT = Path(__file__).with_name("budget.lua").read_text()
_TAKEN, _BOOKED, _DENIED = 1, 2, 0


@dataclass(frozen=True, slots=True)
class Call:
    """One upstream call asking for a token.

    `finish_in`: seconds until its task's expected finish (None: not a poll, served as
    near). `ticket`: a poll hop's name (task id and attempt), by which a slot it booked is
    found when the hop comes back; a call with a ticket is put off by raising `Deferred`,
    one without waits in place.
    """

    finish_in: float | None = None
    ticket: str | None = None

    @property
    def near(self) -> bool:
        return self.finish_in is None or self.finish_in <= NEAR_SECONDS


class Deferred(Exception):
    """The budget put this poll hop off: enqueue it again in `delay` seconds (the slot it
    booked, or when to ask again). Not an upstream error; nothing failed."""

    def __init__(self, delay: float, booked: bool) -> None:
        super().__init__(f"upstream budget: again in {delay:.2f} s")
        self.delay = delay
        self.booked = booked


@dataclass(frozen=True, slots=True)
class Grant:
    """The bucket's answer: `status` taken / booked / denied, `wait` seconds until the
    booked slot or until asking again makes sense, `rate` the effective calls/s."""

    status: int
    wait: float
    rate: float


def limits(settings: Settings) -> tuple[float, dict[str, float]]:
    """The configured calls/s: the default and the per-kind overrides of
    ``UPSTREAM_RATE_LIMITS`` (``"gemini=2,gateway=20"``). Raises ValueError if unreadable."""
    overrides: dict[str, float] = {}
    for item in settings.upstream_rate_limits.split(","):
        if not item.strip():
            continue
        kind, sep, value = item.partition("=")
        rate = float(value) if sep else -1.0
        if not kind.strip() or not rate >= 0 or rate == float("inf"):
            raise ValueError(f"UPSTREAM_RATE_LIMITS: {item.strip()!r} is not kind=calls/s")
        overrides[kind.strip()] = rate
    return settings.upstream_rate_limit, overrides


def rate_limited(error: UpstreamError) -> bool:
    """Whether an upstream answer asks us to slow down (shrinks the budget)."""
    if not isinstance(error, TransientUpstreamError):
        return False
    return error.status == 429 or error.code in _RATE_LIMIT_CODES


@dataclass
class _LocalBucket:
    """One worker's bucket while Redis is unreachable (no priority, no booking)."""

    rate: float
    capacity: float
    tokens: float = field(init=False)
    at: float = field(init=False, default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    def take(self) -> float:
        """Take a token; the seconds to wait before using it (tokens may go negative)."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate) - 1
        self.at = now
        return max(0.0, -self.tokens / self.rate)


class UpstreamBudget:
    """The budget of every provider kind, shared by this worker's jobs (and, through
    Redis, with every other worker). Key prefix: ``gv:budget:{kind}``."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._default, self._overrides = limits(settings)
        self._burst = settings.upstream_rate_burst_seconds
        self._script = redis.register_script(_SCRIPT)
        self._local: dict[str, _LocalBucket] = {}
        self._outage_logged = 0.0

    def limit(self, kind: str) -> float:
        """The configured calls/s for `kind` (0: unlimited)."""
        return self._overrides.get(kind, self._default)

    async def take(self, kind: str, call: Call) -> Grant:
        """Ask the shared bucket for one token, in one round trip.

        Raises RedisError / OSError / TimeoutError when Redis does not answer.
        """
        bucket = f"gv:budget:{{{kind}}}"
        booking = f"{bucket}:book:{call.ticket}" if call.ticket else bucket
        reserve = 0.0 if call.near else RESERVE
        horizon = HORIZON_SECONDS if call.near else 0.0
        args: list[str | float] = ["take", self.limit(kind), self._burst, reserve, horizon]
        args.append(BOOKING_GRACE_SECONDS)
        answer = await self._script(keys=[bucket, booking], args=args)
        status, wait, rate = (float(x) for x in answer)
        UPSTREAM_BUDGET_RATE.labels(kind).set(rate)
        return Grant(int(status), wait, rate)

    async def shrink(self, kind: str) -> None:
        """A rate-limit answer: halve the shared rate (at most once a second). Never raises."""
        bucket = f"gv:budget:{{{kind}}}"
        try:
            answer = await self._script(
                keys=[bucket, bucket], args=["shrink", self.limit(kind), self._burst]
            )
        except (RedisError, OSError, TimeoutError):
            return
        UPSTREAM_BUDGET_RATE.labels(kind).set(float(answer[2]))

    async def admit(self, kind: str, call: Call) -> None:
        """Return when a call to `kind` may go now (at once when `kind` has no limit).

        A call with a ticket (a poll hop) that may not go soon raises `Deferred`; any
        other waits here for its slot. Never raises for a Redis outage (the local bucket).
        """
        if self.limit(kind) <= 0:
            return
        while True:
            try:
                grant = await self.take(kind, call)
            except (RedisError, OSError, TimeoutError) as exc:
                await self._locally(kind, exc)
                return
            if grant.status == _TAKEN:
                UPSTREAM_BUDGET_TOKENS.labels(kind, "taken").inc()
                return
            delay = grant.wait if grant.status == _BOOKED else self._again(call, grant.wait)
            UPSTREAM_BUDGET_TOKENS.labels(kind, "booked" if grant.status else "denied").inc()
            UPSTREAM_BUDGET_WAIT.labels(kind).inc(delay)
            booked = grant.status == _BOOKED
            if call.ticket is not None and not (booked and delay <= IN_PLACE_SECONDS):
                raise Deferred(delay - LEAD_SECONDS if booked else delay, booked=booked)
            await asyncio.sleep(delay)
            if grant.status == _BOOKED:
                return

    async def note(self, kind: str, error: UpstreamError) -> None:
        """Feed an upstream error back: a rate-limit answer shrinks `kind`'s rate."""
        if self.limit(kind) > 0 and rate_limited(error):
            await self.shrink(kind)

    @staticmethod
    def _again(call: Call, wait: float) -> float:
        """When a denied call asks again. A near one (the book is full): a random half to
        whole horizon later. A far one: at a random time before it nears its finish (at
        most the horizon), so the far polls share what the near ones leave, spread out."""
        if call.near:
            return wait + random.uniform(0.5, 1.0) * HORIZON_SECONDS
        until_near = min((call.finish_in or 0.0) - NEAR_SECONDS, HORIZON_SECONDS)
        return max(wait, random.uniform(0.1, 1.0) * until_near)

    async def _locally(self, kind: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._outage_logged > 60:
            self._outage_logged = now
            log.warning("upstream_budget_local", provider=kind, error=type(exc).__name__)
        rate = self.limit(kind)
        bucket = self._local.setdefault(kind, _LocalBucket(rate, max(1.0, rate * self._burst)))
        UPSTREAM_BUDGET_TOKENS.labels(kind, "local").inc()
        wait = bucket.take()
        if wait > 0:
            UPSTREAM_BUDGET_WAIT.labels(kind).inc(wait)
            await asyncio.sleep(wait)
