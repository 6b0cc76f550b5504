"""The video object tells the truth about the stored file, the variants are served as the
OpenAI Videos API defines them, and an unplayable download is retried, then refunded."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from core.bootstrap import storage_from
from core.storage.keys import spritesheet_key, thumbnail_key, video_key
from tests.eventually import eventually
from tests.integration.e2e.helpers import create, credits, finished, sim_stats, sim_tasks


async def test_a_completed_video_reports_what_was_measured(acme, assert_ledger):
    video = await create(acme, "measured [sim:duration=1]", model="veo3", size="720x1280")
    done = await finished(acme, video["id"])
    assert done["status"] == "completed", done
    # The simulator renders small videos of the requested shape: 9:16, 8 s, with audio.
    assert (done["width"], done["height"]) == (180, 320)
    assert done["size"] == "180x320"
    assert 7500 <= done["duration_ms"] <= 8500 and done["seconds"] == "8"
    assert done["codec"] == "h264" and done["has_audio"] is True and done["fps"] > 0
    await assert_ledger()


async def test_thumbnail_and_spritesheet_are_served_as_images(acme):
    video = await create(acme, "variants [sim:duration=1]", model="veo2")
    done = await finished(acme, video["id"])
    assert done["status"] == "completed" and done["has_audio"] is False
    for variant, fmt in (("thumbnail", "WEBP"), ("spritesheet", "JPEG")):
        url = f"/v1/videos/{video['id']}/content"
        answer = await acme.get(url, params={"variant": variant, "redirect": "0"})
        assert answer.status_code == 200, answer.text
        image = Image.open(io.BytesIO(answer.content))
        assert image.format == fmt
        assert answer.headers["content-type"] == f"image/{fmt.lower()}"
    shown = await acme.get(url, params={"variant": "thumbnail", "redirect": "0"})
    thumbnail = Image.open(io.BytesIO(shown.content))
    assert abs(thumbnail.width / thumbnail.height - 16 / 9) < 0.05
    redirected = await acme.get(url, params={"variant": "thumbnail"}, follow_redirects=False)
    assert redirected.status_code == 302  # S3: a presigned URL
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(redirected.headers["location"])).content[:4] == b"RIFF"


async def test_an_unknown_variant_is_a_problem(acme):
    video = await create(acme, "variant names [sim:duration=1]")
    answer = await acme.get(f"/v1/videos/{video['id']}/content", params={"variant": "poster"})
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "validation_error"


async def test_deleting_a_video_deletes_its_variants(acme, settings):
    video = await create(acme, "delete me [sim:duration=1]")
    assert (await finished(acme, video["id"]))["status"] == "completed"
    storage = storage_from(settings)
    try:
        keys = [f(video["id"]) for f in (video_key, thumbnail_key, spritesheet_key)]
        assert all([await storage.stat(key) for key in keys])
        assert (await acme.delete(f"/v1/videos/{video['id']}")).status_code == 200

        async def sizes() -> list[int | None]:
            return [await storage.stat(key) for key in keys]

        await eventually(sizes, until=lambda found: found == [None, None, None], what="purge")
    finally:
        await storage.close()


async def test_a_truncated_download_is_fetched_again(acme, stack, assert_ledger):
    video = await create(acme, "cut once [sim:duration=1] [sim:truncate=1]")
    done = await finished(acme, video["id"])
    assert done["status"] == "completed", done
    downloads = (await sim_stats(stack))["downloads"]
    cut = [t["task_id"] for t in await sim_tasks(stack) if t["prompt"].startswith("cut once")]
    assert [downloads[task_id] for task_id in cut] == [2]
    await assert_ledger()


async def test_a_video_that_never_plays_fails_invalid_video_and_is_refunded(acme, assert_ledger):
    before, _, _ = await credits(acme)
    video = await create(acme, "always cut [sim:duration=1] [sim:truncate=99]")
    done = await finished(acme, video["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "invalid_video", done
    after, held, kinds = await credits(acme)
    assert (after, held) == (before, 0) and kinds[0] == "release"
    await assert_ledger()
