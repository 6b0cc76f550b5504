"""A ``CALLBACK_URL`` the upstream cannot reach (a ClusterIP Service or ``localhost`` seen
from the internet) must not slow polling down, or every finish would be noticed several
polls late (issue 12): polls slow only once callbacks are seen arriving."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from cli.supervise import free_port
from core.callback import ARRIVING_KEY
from tests.integration.e2e.conftest import running_stack
from tests.integration.e2e.helpers import create, finished
from tests.integration.stack import Stack


@pytest.fixture(scope="module")
def stack(pg_url, redis_url, s3_endpoint, tmp_path_factory) -> Iterator[Stack]:
    # Nobody listens on the callback port. The task runs ~4 s upstream (time scale 0.01),
    # so it needs a second poll: 2 s after the first at full pace, 60 s with the factor.
    # The wide gap keeps the check about the schedule, not about how busy the machine is.
    lost = {
        "GOOGLE_VIDEO_CALLBACK_URL": f"http://127.0.0.1:{free_port()}",
        "GOOGLE_VIDEO_POLL_FIRST_DELAY": "2",
        "GOOGLE_VIDEO_POLL_MIN_INTERVAL": "2",
        "GOOGLE_VIDEO_RECONCILE_GRACE_SECONDS": "60",
        "GOOGLE_VIDEO_CALLBACK_POLL_FACTOR": "30",
    }
    log_dir = tmp_path_factory.mktemp("lost-callback-logs")
    with running_stack(pg_url, redis_url, s3_endpoint, log_dir, lost) as result:
        yield result


async def test_an_unreachable_callback_url_does_not_slow_polling(stack, redis_url, acme):
    redis = Redis.from_url(redis_url)
    try:
        await redis.delete(ARRIVING_KEY)
    finally:
        await redis.aclose()
    started = time.monotonic()
    video = await create(acme, "nobody calls back [sim:duration=400]")
    done = await finished(acme, video["id"], deadline=45)
    assert done["status"] == "completed"
    # ~6 s on an idle machine; a slowed second poll alone would come at 62 s.
    assert time.monotonic() - started < 40
