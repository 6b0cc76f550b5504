"""Create, read, list, page through and delete videos over HTTP (real PostgreSQL, Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job
from redis.asyncio import Redis

from core import queue as jobs
from core.queue_codec import ARQ_CODEC, loads
from tests.integration.images import PNG_URI
from worker.jobs.purge import purge_video
from worker.lifecycle import on_shutdown, on_startup

PROMPT = "a red fox running through snow at dawn"


async def test_create_holds_price_and_returns_queued_video(client_for, grant, assert_ledger):
    acme = await client_for("acme")
    await grant("acme", "alice", 500)
    response = await acme.post("/v1/videos", json={"prompt": PROMPT, "user": "alice"})
    assert response.status_code == 200, response.text
    video = response.json()
    assert video["object"] == "video"
    assert video["status"] == "queued"
    assert video["internal_status"] == "queued"
    assert video["model"] == "veo3"  # runtime-config default for text
    assert video["task_type"] == "text_to_video"
    assert video["price"] == 100
    assert video["progress"] == 0
    assert video["user"] == "alice"
    assert video["seconds"] == "8" and video["size"] == "1280x720"
    credits = (await acme.get("/v1/credits/alice")).json()
    assert (credits["balance"], credits["held"]) == (400, 100)
    assert [e["kind"] for e in credits["entries"]] == ["hold", "grant"]
    await assert_ledger()


async def test_create_enqueues_submit_job_with_id_from_task(client_for, grant, redis_url):
    acme = await client_for("acme")
    await grant("acme", "acme", 100)
    video = (await acme.post("/v1/videos", json={"prompt": PROMPT})).json()
    redis = Redis.from_url(redis_url)
    try:
        info = await Job(jobs.submit(video["id"]).job_id, redis, _deserializer=loads).info()
    finally:
        await redis.aclose()
    assert info is not None
    assert info.function == jobs.SUBMIT
    assert list(info.args) == [video["id"]]  # JSON: a list


async def test_image_model_default_and_mode_follow_from_images(client_for, grant):
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    response = await acme.post("/v1/videos", json={"prompt": PROMPT, "images": [PNG_URI]})
    assert response.status_code == 200, response.text
    video = response.json()
    assert video["model"] == "veo3-pro-frames"
    assert video["task_type"] == "image_to_video"
    assert video["price"] == 200
    assert video["images"][0].startswith("stored:inputs/")


async def test_two_frame_model_accepts_url_and_data_uri(client_for, grant):
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    body = {
        "prompt": PROMPT,
        "model": "veo2-fast-frames",
        "images": ["https://images.example/first.png", PNG_URI],
        "metadata": {"order": "42"},
        "enhance_prompt": True,
    }
    video = (await acme.post("/v1/videos", json=body)).json()
    assert video["images"][0] == "https://images.example/first.png"
    assert video["metadata"] == {"order": "42"}
    assert video["enhance_prompt"] is True


async def test_retrieve_and_list_show_only_own_videos(client_for, grant):
    acme, globex = await client_for("acme"), await client_for("globex")
    await grant("acme", "acme", 1000)
    await grant("globex", "globex", 1000)
    mine = (await acme.post("/v1/videos", json={"prompt": PROMPT})).json()
    theirs = (await globex.post("/v1/videos", json={"prompt": PROMPT})).json()
    assert (await acme.get(f"/v1/videos/{mine['id']}")).status_code == 200
    hidden = await acme.get(f"/v1/videos/{theirs['id']}")
    assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
    assert (await acme.delete(f"/v1/videos/{theirs['id']}")).status_code == 404
    listed = (await acme.get("/v1/videos")).json()
    assert [v["id"] for v in listed["data"]] == [mine["id"]]


async def test_admin_sees_every_client(admin, client_for, grant):
    acme = await client_for("acme")
    await grant("acme", "acme", 100)
    video = (await acme.post("/v1/videos", json={"prompt": PROMPT})).json()
    assert (await admin.get(f"/v1/videos/{video['id']}")).status_code == 200


async def test_list_pages_with_cursor_in_both_orders(client_for, grant, admin):
    await admin.put("/v1/admin/config", json={"max_concurrent_tasks_per_user": 50})
    acme = await client_for("acme")
    await grant("acme", "acme", 10_000)
    created = []
    for n in range(7):
        created.append(
            (await acme.post("/v1/videos", json={"prompt": f"{PROMPT} {n}"})).json()["id"]
        )
    seen, after = [], None
    while True:
        params = {"limit": 3, **({"after": after} if after else {})}
        page = (await acme.get("/v1/videos", params=params)).json()
        assert page["object"] == "list"
        seen += [v["id"] for v in page["data"]]
        assert page["first_id"] == page["data"][0]["id"]
        assert page["last_id"] == page["data"][-1]["id"]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == list(reversed(created))
    ascending = (await acme.get("/v1/videos", params={"order": "asc", "limit": 100})).json()
    assert [v["id"] for v in ascending["data"]] == created


async def test_list_filters_by_user_and_status(client_for, grant):
    acme = await client_for("acme")
    await grant("acme", "alice", 1000)
    await grant("acme", "bob", 1000)
    a = (await acme.post("/v1/videos", json={"prompt": PROMPT, "user": "alice"})).json()
    b = (await acme.post("/v1/videos", json={"prompt": PROMPT, "user": "bob"})).json()
    await acme.post(f"/v1/videos/{b['id']}/cancel")
    alice = (await acme.get("/v1/videos", params={"user": "alice"})).json()
    assert [v["id"] for v in alice["data"]] == [a["id"]]
    failed = (await acme.get("/v1/videos", params={"status": "failed"})).json()
    assert [v["id"] for v in failed["data"]] == [b["id"]]
    assert failed["data"][0]["error"]["code"] == "cancelled"
    assert failed["data"][0]["cancelled"] is True


async def test_delete_unfinished_video_cancels_and_releases(client_for, grant, assert_ledger):
    acme = await client_for("acme")
    await grant("acme", "acme", 100)
    video = (await acme.post("/v1/videos", json={"prompt": PROMPT})).json()
    deleted = await acme.delete(f"/v1/videos/{video['id']}")
    assert deleted.json() == {"id": video["id"], "object": "video.deleted", "deleted": True}
    assert (await acme.get(f"/v1/videos/{video['id']}")).status_code == 404
    credits = (await acme.get("/v1/credits/acme")).json()
    assert (credits["balance"], credits["held"]) == (100, 0)
    assert [e["kind"] for e in credits["entries"]][:2] == ["release", "hold"]
    await assert_ledger()


async def test_delete_leaves_the_stored_inputs_to_the_purge_job(
    client_for, grant, settings, redis_url
):
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    video = (await acme.post("/v1/videos", json={"prompt": PROMPT, "images": [PNG_URI]})).json()
    inputs = settings.data_dir / "storage" / "inputs" / video["id"]
    assert (await acme.delete(f"/v1/videos/{video['id']}")).status_code == 200
    assert any(inputs.iterdir())  # the answer never waits for the store

    redis = await create_pool(RedisSettings.from_dsn(redis_url), **ARQ_CODEC)
    ctx: dict[str, Any] = {"settings": settings, "redis": redis, "job_try": 1}
    try:
        info = await Job(jobs.purge_video(video["id"]).job_id, redis, _deserializer=loads).info()
        assert info is not None
        assert (info.function, list(info.args)) == (jobs.PURGE_VIDEO, [video["id"]])
        await on_startup(ctx)
        assert await purge_video(ctx, video["id"]) == "purged"
        assert await purge_video(ctx, video["id"]) == "skipped"
    finally:
        await on_shutdown(ctx)
        await redis.aclose()
    assert not inputs.exists() or not any(inputs.iterdir())


async def test_cancel_of_finished_video_conflicts(client_for, grant):
    acme = await client_for("acme")
    await grant("acme", "acme", 100)
    video = (await acme.post("/v1/videos", json={"prompt": PROMPT})).json()
    assert (await acme.post(f"/v1/videos/{video['id']}/cancel")).status_code == 200
    again = await acme.post(f"/v1/videos/{video['id']}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "video_already_finished"


async def test_models_catalogue_lists_roles_and_prices(client_for):
    acme = await client_for("acme")
    models = {m["id"]: m for m in (await acme.get("/v1/models")).json()["data"]}
    assert len(models) == 19  # 14 through the gateway, 5 from the Gemini API
    assert models["veo2-fast-frames"]["image_roles"] == ["first frame", "last frame"]
    assert models["veo2-fast-frames"]["modes"] == ["text_to_video", "image_to_video"]
    assert models["veo3"]["max_images"] == 0 and models["veo3"]["price"] == 100


async def test_operator_extends_catalogue_without_code(admin, client_for, grant):
    config = (await admin.get("/v1/admin/config")).json()
    models = config["models"] + [
        {
            "id": "veo3.1-fast-components",
            "max_images": 3,
            "image_roles": ["element"] * 3,
            "price": 250,
        }
    ]
    assert (await admin.put("/v1/admin/config", json={"models": models})).status_code == 200
    acme = await client_for("acme")
    await grant("acme", "acme", 250)
    video = (
        await acme.post("/v1/videos", json={"prompt": PROMPT, "model": "veo3.1-fast-components"})
    ).json()
    assert video["price"] == 250


async def test_health_and_readiness(app):
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        ready = (await c.get("/readyz")).json()
    assert ready["checks"] == {"database": "ok", "redis": "ok", "storage": "ok"}


async def test_concurrent_gets_do_not_interfere(client_for, grant):
    acme = await client_for("acme")
    await grant("acme", "acme", 100)
    video = (await acme.post("/v1/videos", json={"prompt": PROMPT})).json()
    answers = await asyncio.gather(*(acme.get(f"/v1/videos/{video['id']}") for _ in range(20)))
    assert {a.status_code for a in answers} == {200}
