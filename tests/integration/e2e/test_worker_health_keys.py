"""Each worker keeps its own ARQ health record (``arq:queue:health-check:<host>:<pid>``):
with ARQ's default, every worker wrote one shared key and the first to exit deleted it,
so it said nothing about the others (issue 12)."""

from __future__ import annotations

from redis.asyncio import Redis

from tests.eventually import eventually


async def test_every_worker_has_its_own_health_key_and_removes_only_its_own(stack) -> None:
    second = stack.start_worker()
    first_pid, second_pid = stack.workers[0].pid, second.pid
    redis = Redis.from_url(stack.env["GOOGLE_VIDEO_REDIS_URL"])

    async def pids() -> set[int]:
        keys = [k.decode() async for k in redis.scan_iter("arq:queue:health-check*")]
        return {int(key.rsplit(":", 1)[1]) for key in keys}

    try:
        assert await eventually(pids, 20, until=lambda p: p >= {first_pid, second_pid})
        second.stop()
        stack.workers.remove(second)
        remaining = await eventually(pids, 20, until=lambda p: second_pid not in p)
        assert first_pid in remaining
    finally:
        await redis.aclose()
