"""The global upstream budget's bucket (worker/budget.lua) on a real Redis: atomic under
concurrent asks, refilled by elapsed time, halved by rate-limit answers and regrown in
quiet periods; polls near their expected finish served before far ones; a booked slot
found again by its hop; a Redis outage falling back to the worker's own bucket."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from cli.supervise import free_port
from schemas.settings import Settings
from worker.budget import (
    HORIZON_SECONDS,
    NEAR_SECONDS,
    Call,
    Deferred,
    UpstreamBudget,
)
from worker.upstream.errors import TransientUpstreamError

NEAR = Call(finish_in=0.0)
FAR = Call(finish_in=NEAR_SECONDS + 100)
_kinds = itertools.count()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, max_connections=64)
    yield client
    await client.aclose()


def budget(redis: Redis, rate: float, burst: float = 1.0) -> tuple[UpstreamBudget, str]:
    """A budget and a kind of its own (tests share the Redis server)."""
    settings = Settings(upstream_rate_limit=rate, upstream_rate_burst_seconds=burst)
    return UpstreamBudget(redis, settings), f"budget-test-{next(_kinds)}"


async def test_concurrent_asks_each_get_their_own_token_or_slot(redis: Redis) -> None:
    limited, kind = budget(redis, rate=2.0, burst=10.0)  # 20 tokens, then slots 0.5 s apart
    started = time.monotonic()
    grants = await asyncio.gather(*(limited.take(kind, NEAR) for _ in range(200)))
    refilled = (time.monotonic() - started) * 2.0
    taken = sum(g.status == 1 for g in grants)
    slots = sorted(g.wait for g in grants if g.status == 2)
    assert 20 <= taken <= 20 + refilled + 1
    # The book holds HORIZON_SECONDS of the rate; every slot is its own, 1/rate apart.
    assert len(slots) == pytest.approx(HORIZON_SECONDS * 2.0, abs=refilled + 1)
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert all(gap == pytest.approx(0.5, abs=0.05) for gap in gaps)
    denied = [g for g in grants if g.status == 0]
    assert len(denied) == 200 - taken - len(slots) and all(g.wait > 0 for g in denied)


async def test_tokens_refill_at_the_rate(redis: Redis) -> None:
    limited, kind = budget(redis, rate=20.0)  # 20 tokens
    grants = [await limited.take(kind, NEAR) for _ in range(20)]
    assert all(g.status == 1 for g in grants)
    over = await limited.take(kind, FAR)
    assert over.status == 0 and 0 < over.wait <= 0.6  # until the reserve (10) is back
    await asyncio.sleep(over.wait + 0.05)
    assert (await limited.take(kind, FAR)).status == 1


async def test_far_polls_leave_the_reserve_to_near_ones(redis: Redis) -> None:
    limited, kind = budget(redis, rate=0.1, burst=100.0)  # 10 tokens, ~no refill
    far = [await limited.take(kind, FAR) for _ in range(8)]
    assert [g.status for g in far] == [1] * 5 + [0] * 3  # half the bucket stays
    near = [await limited.take(kind, NEAR) for _ in range(6)]
    assert [g.status for g in near] == [1] * 5 + [2]  # the last tokens, then a slot


async def test_rate_limit_answers_halve_the_rate_once_a_second(redis: Redis) -> None:
    limited, kind = budget(redis, rate=20.0)
    assert (await limited.take(kind, NEAR)).rate == 20.0
    error = TransientUpstreamError("upstream_overloaded", "slow down", status=429)
    await limited.note(kind, error)
    await limited.note(kind, error)  # the same second: one halving
    assert (await limited.take(kind, NEAR)).rate == 10.0
    await limited.note(kind, TransientUpstreamError("server_error", "oops", status=500))
    assert (await limited.take(kind, NEAR)).rate == 10.0  # not a rate-limit answer


async def test_quiet_periods_restore_the_rate_additively(redis: Redis) -> None:
    limited, kind = budget(redis, rate=20.0)
    await limited.shrink(kind)
    assert (await limited.take(kind, NEAR)).rate == 10.0
    # Move the last halving 10 s and the last ask 2 s into the past (Redis TIME is the
    # clock): 2 quiet seconds at 5 % of 20/s each.
    seconds, micros = await redis.time()
    now = seconds + micros / 1e6
    await redis.hset(f"gv:budget:{{{kind}}}", mapping={"shrunk": now - 10, "ts": now - 2})
    assert (await limited.take(kind, NEAR)).rate == pytest.approx(12.0, abs=0.05)
    await redis.hset(f"gv:budget:{{{kind}}}", mapping={"shrunk": now - 200, "ts": now - 100})
    assert (await limited.take(kind, NEAR)).rate == 20.0  # never above the configured rate


async def test_a_booked_hop_is_let_through_at_its_slot_only(redis: Redis) -> None:
    limited, kind = budget(redis, rate=0.5, burst=2.0)  # 1 token
    assert (await limited.take(kind, NEAR)).status == 1
    hop = Call(finish_in=0.0, ticket="t1:3")
    with pytest.raises(Deferred) as booked:
        await limited.admit(kind, hop)
    # Slot in 2 s; the hop is due half a second before it (and then waits in the job).
    assert booked.value.booked and booked.value.delay == pytest.approx(1.5, abs=0.05)
    again = await limited.take(kind, hop)  # a duplicate hop, early: still booked
    assert again.status == 2 and 1.5 < again.wait <= 2.0
    await asyncio.sleep(again.wait)
    assert (await limited.take(kind, hop)).status == 1  # the slot, already paid
    tokens = float(await redis.hget(f"gv:budget:{{{kind}}}", "tokens") or 0)
    assert tokens == pytest.approx(0.0, abs=0.1)  # paid once, not twice


async def test_a_redis_outage_falls_back_to_the_workers_own_bucket() -> None:
    gone = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    limited, kind = budget(gone, rate=10.0)  # 10 tokens locally
    started = time.monotonic()
    for _ in range(12):
        await limited.admit(kind, Call(finish_in=0.0, ticket="t:0"))
    assert 0.15 <= time.monotonic() - started < 3  # two waited 0.1 s each, nobody failed
    await gone.aclose()


async def test_no_limit_asks_nothing(redis: Redis) -> None:
    limited, kind = budget(redis, rate=0.0)
    for _ in range(100):
        await limited.admit(kind, FAR)
    assert not await redis.exists(f"gv:budget:{{{kind}}}")
