"""Queued → stored MP4 (or a clean, refunded failure) with real processes: the API,
ARQ worker processes, the simulator, PostgreSQL, Redis and moto S3."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.e2e.helpers import create, credits, finished
from tests.integration.images import PNG_URI, data_uri, png_bytes


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


@pytest.mark.slow
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
