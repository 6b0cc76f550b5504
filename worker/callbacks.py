"""Whether the upstream's callbacks are reaching the API: the evidence that lets polls
slow down (``CALLBACK_POLL_FACTOR``).

A ``CALLBACK_URL`` the upstream cannot reach (a ClusterIP Service, ``localhost``) loses
every callback; polling sparsely on the strength of the setting alone would then notice
each finish several times later. So the API marks every authentic callback in Redis
(``core.callback.ARRIVING_KEY``, expiring after ``CALLBACK_TRUST_SECONDS``) and workers
slow down only while that mark exists.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.callback import ARRIVING_KEY

# Seconds a worker trusts its last reading; the mark itself lives for an hour by default.
REFRESH_SECONDS = 30.0


class CallbackEvidence:
    """The worker's cached reading of the mark: ``arriving`` is False until a refresh
    finds it, and after a refresh that cannot reach Redis (full-pace polling is the safe
    side)."""

    def __init__(self) -> None:
        self.arriving = False
        self._read_at: float | None = None

    async def refresh(self, redis: Redis) -> bool:
        """Read the mark if the last reading is older than REFRESH_SECONDS; returns
        ``arriving``."""
        now = time.monotonic()
        if self._read_at is not None and now - self._read_at < REFRESH_SECONDS:
            return self.arriving
        self._read_at = now
        try:
            self.arriving = bool(await redis.exists(ARRIVING_KEY))
        except (RedisError, OSError):
            self.arriving = False
        return self.arriving
