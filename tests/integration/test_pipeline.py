"""Queued → stored MP4 (or a clean, refunded failure) with real processes: the API,
ARQ worker processes, the simulator, PostgreSQL, Redis and moto S3."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from schemas.settings import Settings
from tests.integration.conftest import ADMIN_KEY
from tests.integration.images import PNG_URI, data_uri, png_bytes
from tests.integration.stack import SIM_KEY, Stack, base_env, simulator

BUCKET = "google-video-test"


@pytest.fixture(scope="module")
def stack(pg_url: str, redis_url: str, s3_endpoint: str, tmp_path_factory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("stack-logs")
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    storage = {
        "GOOGLE_VIDEO_STORAGE_URL": f"s3://{BUCKET}/e2e",
        "GOOGLE_VIDEO_S3_ENDPOINT_URL": s3_endpoint,
        "GOOGLE_VIDEO_S3_REGION": "us-east-1",
        "GOOGLE_VIDEO_S3_ACCESS_KEY_ID": "test",
        "GOOGLE_VIDEO_S3_SECRET_ACCESS_KEY": "test",
    }
    with simulator(log_dir) as sim_url:
        result = Stack(base_env(pg_url, redis_url, storage, sim_url), sim_url, log_dir)
        result.start_worker()
        try:
            yield result
        finally:
            result.stop_workers()


@pytest.fixture
def settings(stack: Stack, tmp_path: Path) -> Settings:
    env = {
        k.removeprefix("GOOGLE_VIDEO_").lower(): v
        for k, v in stack.env.items()
        if k.startswith("GOOGLE_VIDEO_") and not k.startswith("GOOGLE_VIDEO_SIM_")
    }
    return Settings(
        **{
            **env,
            "data_dir": tmp_path,
            "admin_key": ADMIN_KEY,
            "api_key_cache_seconds": 0,
            "public_url": "http://testserver",
        }
    )


@pytest.fixture
async def acme(client_for, grant) -> httpx.AsyncClient:
    client = await client_for("acme")
    await grant("acme", "acme", 100_000)
    return client


@pytest.fixture(autouse=True)
async def roomy_limits(admin) -> None:
    await admin.put(
        "/v1/admin/config", json={"max_concurrent_tasks_per_user": 100, "task_timeout_seconds": 60}
    )


async def finished(
    client: httpx.AsyncClient, video_id: str, deadline: float = 45.0
) -> dict[str, Any]:
    """Wait (with a deadline, no fixed sleeps) until the video reaches a final status."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        video = (await client.get(f"/v1/videos/{video_id}")).json()
        if video["status"] in ("completed", "failed"):
            return dict(video)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{video_id} did not finish in {deadline}s: {video}")


async def create(client: httpx.AsyncClient, prompt: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/v1/videos", json={"prompt": prompt, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def credits(client: httpx.AsyncClient) -> tuple[int, int, list[str]]:
    body = (await client.get("/v1/credits/acme", params={"limit": 100})).json()
    return body["balance"], body["held"], [e["kind"] for e in body["entries"]]


async def sim_stats(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient() as c:
        return dict((await c.get(f"{stack.sim_url}/_sim/stats")).json())


async def test_text_to_video_completes_captures_and_serves_mp4(acme, assert_ledger):
    video = await finished(acme, (await create(acme, "a fox [sim:duration=1]"))["id"])
    assert video["status"] == "completed", video
    assert video["progress"] == 100 and video["completed_at"]
    assert video["video_bytes"] > 1000 and len(video["video_sha256"]) == 64
    assert video["download_url"] and video["expires_at"]
    content = await acme.get(f"/v1/videos/{video['id']}/content", follow_redirects=False)
    assert content.status_code == 302  # S3: a presigned URL
    async with httpx.AsyncClient() as plain:
        mp4 = (await plain.get(content.headers["location"])).content
    assert mp4[4:8] == b"ftyp" and len(mp4) == video["video_bytes"]
    streamed = await acme.get(f"/v1/videos/{video['id']}/content", params={"redirect": "0"})
    assert streamed.content == mp4 and streamed.headers["content-type"] == "video/mp4"
    balance, held, kinds = await credits(acme)
    assert (balance, held) == (100_000 - 100, 0) and kinds[0] == "capture"
    await assert_ledger()


async def test_image_to_video_with_first_and_last_frame(acme, assert_ledger):
    last = data_uri(png_bytes(3, 3))
    video = await create(
        acme, "two frames [sim:duration=1]", model="veo2-fast-frames", images=[PNG_URI, last]
    )
    done = await finished(acme, video["id"])
    assert done["status"] == "completed" and done["task_type"] == "image_to_video"
    await assert_ledger()


async def test_upstream_failure_releases_with_reason_verbatim(acme, assert_ledger):
    video = await finished(
        acme, (await create(acme, "nope [sim:duration=1] [sim:fail=内容审核未通过]"))["id"]
    )
    assert video["status"] == "failed"
    assert video["error"] == {"code": "upstream_failed", "message": "内容审核未通过"}
    balance, held, kinds = await credits(acme)
    assert (balance, held) == (100_000, 0) and kinds[0] == "release"
    await assert_ledger()


async def test_poll_429s_and_500s_still_complete(acme, assert_ledger):
    video = await create(acme, "busy [sim:duration=1] [sim:poll429=3] [sim:poll500=3]")
    assert (await finished(acme, video["id"]))["status"] == "completed"
    await assert_ledger()


async def test_success_without_url_keeps_polling_then_completes(acme, assert_ledger):
    video = await create(acme, "slow cdn [sim:duration=1] [sim:nourl=4]")
    assert (await finished(acme, video["id"]))["status"] == "completed"
    await assert_ledger()


async def test_unknown_status_keeps_polling(acme, assert_ledger):
    video = await create(acme, "odd [sim:duration=1] [sim:unknown_status=4]")
    assert (await finished(acme, video["id"]))["status"] == "completed"
    await assert_ledger()


async def test_submit_400_fails_and_releases(acme, assert_ledger):
    video = await finished(acme, (await create(acme, "bad [sim:submit=400]"))["id"])
    assert video["status"] == "failed" and video["error"]["code"] == "upstream_rejected"
    assert (await credits(acme))[:2] == (100_000, 0)
    await assert_ledger()


async def test_submit_500_then_success_retries_and_completes_once(acme, stack, assert_ledger):
    prompt = f"flaky gateway {time.time_ns()} [sim:duration=1] [sim:submit500=2]"
    video = await finished(acme, (await create(acme, prompt))["id"])
    assert video["status"] == "completed"
    balance, held, kinds = await credits(acme)
    assert (balance, held) == (100_000 - 100, 0) and kinds.count("capture") == 1
    await assert_ledger()


async def test_download_404_fails_after_retries_and_releases(acme, stack, assert_ledger):
    video = await finished(
        acme, (await create(acme, "gone [sim:duration=1] [sim:download404]"))["id"]
    )
    assert video["status"] == "failed" and video["error"]["code"] == "download_failed"
    assert "3 attempts" in video["error"]["message"]
    assert (await credits(acme))[:2] == (100_000, 0)
    await assert_ledger()


async def test_task_timeout_fails_and_releases(acme, admin, assert_ledger):
    await admin.put("/v1/admin/config", json={"task_timeout_seconds": 10})
    video = await finished(
        acme, (await create(acme, "forever [sim:duration=3000]"))["id"], deadline=30
    )
    assert video["status"] == "failed" and video["error"]["code"] == "timeout"
    assert (await credits(acme))[:2] == (100_000, 0)
    await assert_ledger()


async def test_ambiguous_submit_fails_by_default_and_refunds(acme, assert_ledger):
    video = await finished(
        acme,
        (await create(acme, "lost answer [sim:duration=1] [sim:submit=timeout]"))["id"],
        deadline=60,
    )
    assert video["status"] == "failed" and video["error"]["code"] == "upstream_submit_ambiguous"
    assert (await credits(acme))[:2] == (100_000, 0)
    await assert_ledger()


async def test_many_tasks_complete_concurrently(acme, assert_ledger):
    videos = await asyncio.gather(*(create(acme, f"crowd {n} [sim:duration=1]") for n in range(20)))
    done = await asyncio.gather(*(finished(acme, v["id"]) for v in videos))
    assert {v["status"] for v in done} == {"completed"}
    await assert_ledger()


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


async def test_storing_200mb_video_keeps_worker_memory_bounded(acme, stack, assert_ledger):
    size = 200 * 1024 * 1024
    (worker,) = stack.workers
    warm_up = await create(acme, "warm-up: first use of every client [sim:duration=1]")
    assert (await finished(acme, warm_up["id"]))["status"] == "completed"
    rss_before = _kib(worker.pid, "VmRSS")
    video = await create(acme, f"big [sim:duration=1] [sim:size={size}]")
    done = await finished(acme, video["id"], deadline=120)
    assert done["status"] == "completed", done
    assert done["video_bytes"] == size
    peak_growth_mib = (_kib(worker.pid, "VmHWM") - rss_before) / 1024
    print(f"worker peak RSS growth while storing 200 MiB: {peak_growth_mib:.1f} MiB")
    assert peak_growth_mib < 64, f"worker peak RSS grew {peak_growth_mib:.1f} MiB"
    await assert_ledger()
