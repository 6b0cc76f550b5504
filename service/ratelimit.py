"""The API's rate limits (README, "Limits"), counted in Redis so every replica shares them.

Sliding-window counters of the ``limits`` package: a refused hit is not counted, so
hammering does not prolong a refusal. Once Redis has refused a key, this process answers
that key's next requests itself until the window frees a slot (no round trip for a
flood). A Redis that fails or is slow lets requests through, logged at most once per
``WARN_INTERVAL_SECONDS``: a limit is protection, never a reason to fail a request, and
creates stay durable in the database without Redis.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import cast

import structlog
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.storage.redis.redispy import RedispyBridge
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request

from core.redis_writes import bound_writes_in_context
from schemas.config import RuntimeConfig
from schemas.problems import Code
from service.errors import ProblemError

log = structlog.get_logger(__name__)

KEY_PREFIX = "gv:limits"
# Each Redis call is bounded: past this a request goes through unlimited instead of waiting.
REDIS_TIMEOUT_SECONDS = 0.5
# After a Redis failure, skip it this long (a down Redis costs no timeout per request).
SKIP_SECONDS = 1.0
WARN_INTERVAL_SECONDS = 30.0
# Refusals this process remembers; beyond, the expired ones are dropped (then all).
MAX_REMEMBERED = 10_000


# limits' acquire_sliding_window.lua as a function of its KEYS and ARGV, applied to each
# limit in turn (2 keys and 3 arguments each) until one refuses: its position (1-based), or
# 0 when every one was counted. The last ARGV is a TTL in seconds: when it is above 0, the
# last KEY (an odd one out) is a once-token for the last limit: a hit of a token Redis
# already holds is allowed without counting that limit again, and the token is kept only
# when its limit counted the hit (set and refused in one script: nobody sees it between).
_CHAIN = """
local function acquire(KEYS, ARGV)
%s
end
local once_ttl = tonumber(ARGV[#ARGV])
local n = math.floor(#KEYS / 2)
for i = 1, n do
    local keys = {KEYS[2 * i - 1], KEYS[2 * i]}
    local once = i == n and once_ttl > 0
    if once and not redis.call('SET', KEYS[#KEYS], '1', 'NX', 'EX', once_ttl) then
        return 0
    end
    if not acquire(keys, {ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i]}) then
        if once then
            redis.call('DEL', KEYS[#KEYS])
        end
        return i
    end
end
return 0
"""


def _text(script: str | bytes) -> str:
    """A script as ``limits`` ships it (package data: bytes) as text."""
    return script.decode() if isinstance(script, bytes) else script


def _limits_uri(redis_url: str) -> str:
    """``REDIS_URL`` as the ``limits`` package names it. A Unix socket is ``unix://`` to
    redis-py but ``async+redis+unix://`` to limits, which takes ``async+unix://`` for a
    valkey URL (and then refuses to start without the valkey package)."""
    if redis_url.startswith("unix://"):
        return "async+redis+" + redis_url
    return f"async+{redis_url}"


@dataclass(frozen=True)
class Rule:
    """``amount`` hits per ``seconds`` for each caller of one kind (``name``)."""

    name: str
    amount: int
    seconds: int


class RateLimits:
    """One per API process, built in the app lifespan; ``close`` releases its Redis pool."""

    def __init__(self, redis_url: str) -> None:
        self._storage = RedisStorage(
            _limits_uri(redis_url),
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix=KEY_PREFIX,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        bridge = self._storage.bridge
        assert isinstance(bridge, RedispyBridge)
        redis = cast(Redis, bridge.get_connection())
        bound_writes_in_context(redis.connection_pool)
        self._prefixed = bridge.prefixed_key
        # The library's own script, once per limit, on the library's own keys (what its
        # window stats read; tests/integration/test_limits.py holds the two together).
        self._chain = redis.register_script(_CHAIN % _text(bridge.SCRIPT_ACQUIRE_SLIDING_WINDOW))
        self._refused: dict[str, float] = {}  # limit key → monotonic time a slot frees
        self._skip_until = 0.0
        self._warned_at = -math.inf

    async def hit(self, rule: Rule, *who: str) -> int | None:
        """Count one hit of ``who`` against ``rule``: None when allowed (also when Redis
        cannot be asked), else the whole seconds to wait (``Retry-After``, at least 1)."""
        refused = await self.hit_all((rule, who))
        return None if refused is None else refused[1]

    async def hit_all(
        self, *hits: tuple[Rule, tuple[str, ...]], once: str | None = None
    ) -> tuple[int, int] | None:
        """Count one hit of each ``(rule, who)`` in order, as that many :meth:`hit` calls
        that stop at the first refusal would, in one Redis round trip: a hit is counted
        only if every one before it was allowed, atomically. None when all are allowed
        (also when Redis cannot be asked), else ``(position, seconds to wait)`` of the
        first refused. A hit this process already saw refused is answered from memory:
        only the hits before it go to Redis.

        ``once`` names what the last hit counts (a create's client, ``Idempotency-Key``
        and request hash): while Redis holds it (the last rule's window, from the hit its
        rule counted), hits of the same ``once`` are allowed without counting the last
        rule, so concurrent retries of one request count once. The last hit then always
        goes to Redis: this process's memory of a refusal cannot know the token."""
        items = [(RateLimitItemPerSecond(r.amount, r.seconds), r, who) for r, who in hits]
        keys = [item.key_for(rule.name, *who) for item, rule, who in items]
        remembered = None
        for position, key in enumerate(keys):
            if once is not None and position == len(keys) - 1:
                break
            if (wait := self._still_refused(key)) is not None:
                remembered = (position, wait)
                keys, items = keys[:position], items[:position]
                break
        now = time.monotonic()
        if not keys or now < self._skip_until:
            return remembered
        storage = self._storage
        window_keys = [
            self._prefixed(k)
            for key in keys
            for k in (storage._previous_window_key(key), storage._current_window_key(key))
        ]
        args = [str(v) for item, _, _ in items for v in (item.amount, item.get_expiry(), 1)]
        guarded = once is not None and len(keys) == len(hits)
        if guarded:
            window_keys.append(self._prefixed(f"once/{once}"))
        args.append(str(items[-1][1].seconds if guarded else 0))
        try:
            first_refused = int(await self._chain(keys=window_keys, args=args))
            if first_refused == 0:
                return remembered
            item, rule, who = items[first_refused - 1]
            stats = await self._limiter.get_window_stats(item, rule.name, *who)
        except (StorageError, RedisError, OSError, TimeoutError) as exc:
            self._degrade(exc, now)
            return remembered  # Redis cannot be asked: only what this process knows
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        self._remember(keys[first_refused - 1], now + wait)
        return first_refused - 1, wait

    def refused(self, rule: Rule, *who: str) -> int | None:
        """The seconds ``who`` still has to wait if this process already saw ``rule``
        refuse it (no Redis round trip), else None."""
        return self._still_refused(
            RateLimitItemPerSecond(rule.amount, rule.seconds).key_for(rule.name, *who)
        )

    def _still_refused(self, key: str) -> int | None:
        until = self._refused.get(key)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            del self._refused[key]
            return None
        return max(1, math.ceil(left))

    async def close(self) -> None:
        bridge = self._storage.bridge
        if isinstance(bridge, RedispyBridge):
            await cast(Redis, bridge.get_connection()).aclose()

    def _remember(self, key: str, until: float) -> None:
        if len(self._refused) >= MAX_REMEMBERED:
            now = time.monotonic()
            self._refused = {k: t for k, t in self._refused.items() if t > now}
            if len(self._refused) >= MAX_REMEMBERED:
                self._refused.clear()
        self._refused[key] = until

    def _degrade(self, exc: BaseException, now: float) -> None:
        self._skip_until = now + SKIP_SECONDS
        if now - self._warned_at >= WARN_INTERVAL_SECONDS:
            self._warned_at = now
            log.warning("rate_limits_unavailable", error=type(exc).__name__, detail=str(exc))


def rate_limited(wait: int, detail: str) -> ProblemError:
    """The 429 ``rate_limited`` problem, with ``Retry-After: wait``."""
    return ProblemError(
        Code.RATE_LIMITED,
        f"{detail} Retry after {wait} s.",
        retry_after=wait,
        headers={"Retry-After": str(wait)},
    )


def client_address(request: Request) -> str:
    """The caller's address as the server sees it: the TCP peer, or the address a trusted
    proxy (``FORWARDED_ALLOW_IPS``) put in X-Forwarded-For."""
    return request.client.host if request.client is not None else "unknown"


# The rules, as the runtime config sets them (each read per request: a change applies
# within the config cache's second).


def client_requests(config: RuntimeConfig) -> Rule:
    return Rule("client", config.client_requests_per_minute, 60)


def user_creates(config: RuntimeConfig) -> Rule:
    return Rule("creates", config.user_creates_per_minute, 60)


def event_replays(config: RuntimeConfig) -> Rule:
    return Rule("replay-event", config.replays_per_event_per_hour, 3600)


def client_replays(config: RuntimeConfig) -> Rule:
    return Rule("replay-client", config.replays_per_client_per_minute, 60)


def failed_auth(config: RuntimeConfig) -> Rule:
    return Rule("auth-failed", config.failed_auth_per_minute_per_address, 60)


def callbacks(config: RuntimeConfig) -> Rule:
    return Rule("callback", config.callbacks_per_minute_per_address, 60)
