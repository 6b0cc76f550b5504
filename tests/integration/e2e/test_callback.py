"""The gateway's notify_hook makes completion immediate: with polling slowed to 60 s,
a task finishing upstream after ~1 s completes within seconds only through the
callback. The simulator POSTs the hook to a real API process (``CALLBACK_URL``)."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from redis.asyncio import Redis

from cli.supervise import Child, free_port, port_open
from core.callback import ARRIVING_KEY, token
from schemas.settings import DEV_SECRET_KEY
from tests.integration.e2e.conftest import running_stack
from tests.integration.e2e.helpers import create, finished, reaches
from tests.integration.stack import Stack

SLOW_POLLING = {
    "GOOGLE_VIDEO_POLL_FIRST_DELAY": "60",
    "GOOGLE_VIDEO_POLL_MIN_INTERVAL": "60",
    "GOOGLE_VIDEO_RECONCILE_GRACE_SECONDS": "90",
}


@pytest.fixture(scope="module")
def api_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def stack(pg_url, redis_url, s3_endpoint, tmp_path_factory, api_port) -> Iterator[Stack]:
    public = {"GOOGLE_VIDEO_CALLBACK_URL": f"http://127.0.0.1:{api_port}", **SLOW_POLLING}
    log_dir = tmp_path_factory.mktemp("callback-logs")
    with running_stack(pg_url, redis_url, s3_endpoint, log_dir, public) as result:
        command = [sys.executable, "-m", "cli.main", "api", "--port", str(api_port)]
        api = Child("api", command, env=result.env, output=log_dir / "api.log")
        api.start(functools.partial(port_open, "127.0.0.1", api_port), timeout=20)
        try:
            yield result
        finally:
            api.stop(grace=20)


async def test_callback_completes_long_before_the_next_poll(acme, assert_ledger):
    started = time.monotonic()
    video = await create(acme, "called back [sim:duration=1]")
    done = await finished(acme, video["id"], deadline=40)
    assert done["status"] == "completed"
    assert time.monotonic() - started < 30  # the first poll alone would come after 60 s
    await assert_ledger()


async def test_bad_token_is_404(api_port):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as client:
        for bad in ("video_x.0000", "nonsense", "video_" + "0" * 32 + "." + "f" * 32):
            response = await client.post(f"/v1/upstream/callback/{bad}", json={"status": "SUCCESS"})
            assert response.status_code == 404
            assert response.json()["code"] == "not_found"


async def test_callback_body_is_never_trusted(acme, stack, api_port):
    # 20 s upstream at the stack's time scale (0.01): the simulator's own callback, sent
    # when the task finishes, must not take the rate limit's slot before the forged one.
    video = await create(acme, "still running [sim:duration=2000]")
    await reaches(acme, video["id"], {"running"})
    forged = {"data": {"status": "SUCCESS", "data": {"video_url": "https://evil.example/x.mp4"}}}
    secret_key = stack.env.get("GOOGLE_VIDEO_SECRET_KEY", DEV_SECRET_KEY)
    url = f"/v1/upstream/callback/{token(secret_key, video['id'])}"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as client:
        first = await client.post(url, json=forged)
        second = await client.post(url, json=forged)
    assert first.json() == {"status": "accepted"}
    assert second.json()["reason"] == "rate limited"
    after = (await acme.get(f"/v1/videos/{video['id']}")).json()
    assert after["internal_status"] == "running"  # the poll saw the truth: still running


async def test_an_authentic_callback_marks_callbacks_as_arriving(acme, stack):
    # The finished video above was called back: the mark that lets workers slow is set.
    redis = Redis.from_url(stack.env["GOOGLE_VIDEO_REDIS_URL"])
    try:
        video = await create(acme, "marks arrival [sim:duration=1]")
        await finished(acme, video["id"], deadline=25)
        ttl = await redis.ttl(ARRIVING_KEY)
    finally:
        await redis.aclose()
    assert 0 < ttl <= 3600
