"""Two attacks on what the worker trusts: a pickled job written straight into Redis, and
an upstream key that would follow a changed base URL."""

from __future__ import annotations

import pickle
import secrets
import time
from pathlib import Path

from redis.asyncio import Redis

from tests.eventually import eventually
from tests.integration.e2e.helpers import create
from tests.integration.receiver import Received, Receiver
from tests.integration.stack import Stack
from worker.jobs.submit import submit_task


class _CreatesFile:
    """Unpickling this opens (creates) ``path``: the trace a pickle-trusting worker leaves."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def _job(path: Path) -> bytes:
    """ARQ's pickled job layout, the argument being the trace."""
    return pickle.dumps(
        {"t": 1, "f": "submit_task", "a": [_CreatesFile(path)], "k": {}, "et": 0},
    )


async def test_a_pickled_job_put_into_redis_is_refused_and_never_runs(
    stack: Stack, redis_url: str, tmp_path: Path
) -> None:
    control = tmp_path / "control"
    pickle.loads(_job(control))  # noqa: S301 (proves the payload does what it says)
    assert control.exists()

    trace, job_id = tmp_path / "pwned", "pickled-" + secrets.token_hex(4)
    redis = Redis.from_url(redis_url)
    try:
        await redis.set(f"arq:job:{job_id}", _job(trace), px=60_000)
        await redis.zadd("arq:queue", {job_id: int(time.time() * 1000)})
        log = stack.log_dir / f"{stack.workers[0].name}.log"
        await eventually(
            lambda: log.read_text(errors="replace"),
            20,
            until=lambda text: f"deserializing job {job_id} failed" in text,
            what="the worker refusing the job",
        )

        # Dropped, not retried: ARQ deletes the job after logging the failure (a moment
        # later on a busy machine).
        async def left() -> tuple[int, float | None]:
            return await redis.exists(f"arq:job:{job_id}"), await redis.zscore("arq:queue", job_id)

        await eventually(left, 10, until=lambda found: found[0] == 0 and found[1] is None)
    finally:
        await redis.aclose()
    assert not trace.exists()
    assert stack.workers[0].alive


async def _submits(receiver: Receiver, prefix: str) -> list[Received]:
    return await eventually(
        lambda: [r for r in receiver.requests if r.path.startswith(prefix)], 10, what=prefix
    )


async def test_a_changed_upstream_base_url_is_not_sent_the_stored_key(admin, acme, job_ctx):
    receiver = Receiver()
    receiver.start()
    key = "sk-upstream-" + secrets.token_hex(12)
    try:
        given = await admin.put(
            "/v1/admin/config",
            json={"upstream_base_url": receiver.url("/first"), "upstream_api_key": key},
        )
        assert given.json()["upstream_api_key"] == "****" + key[-4:]
        first = await create(acme, "a fox")
        await submit_task(job_ctx, first["id"])
        assert (await _submits(receiver, "/first/"))[0].headers["authorization"] == f"Bearer {key}"

        moved = await admin.put("/v1/admin/config", json={"upstream_base_url": receiver.url("/x")})
        assert moved.json()["upstream_api_key_set"] is False
        await eventually(  # the worker's config cache (1 s) has caught up
            job_ctx["app"].config.get,
            5,
            until=lambda config: config.upstream_base_url == receiver.url("/x"),
            what="the worker seeing the new base URL",
        )
        second = await create(acme, "a fox")
        await submit_task(job_ctx, second["id"])
        for sent in await _submits(receiver, "/x/"):
            assert "authorization" not in sent.headers and key not in str(sent)
    finally:
        receiver.stop()
