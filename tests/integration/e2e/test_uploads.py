"""A video created from an upload, with real processes: it is made from the upload's
bytes even when the upload expired and was purged before the worker submitted it."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import update
from starlette.applications import Starlette

from core import uploads
from core.repo.tables import uploads as upload_rows
from schemas.clock import utcnow
from tests.integration.e2e.helpers import create, credits, finished, sim_tasks
from tests.integration.images import picture


async def test_a_video_from_an_upload_completes_after_the_upload_is_purged(
    acme, app: Starlette, engine, stack, assert_ledger
):
    data = picture("PNG", 320, 180)
    response = await acme.post("/v1/uploads", files={"file": ("first.png", data, "image/png")})
    assert response.status_code == 201, response.text
    upload_id = response.json()["id"]
    prompt = "from an upload [sim:duration=1]"
    # No worker until the upload is gone: the submit reads the video's own copy.
    stack.stop_workers()
    try:
        video = await create(
            acme, prompt, model="veo3-pro-frames", input_reference={"file_id": upload_id}
        )
        async with engine.begin() as conn:
            await conn.execute(
                update(upload_rows).values(expires_at=utcnow() - timedelta(seconds=1))
            )
        assert await uploads.purge_expired(engine, app.state.ctx.storage) == 1
        assert (await acme.get(f"/v1/uploads/{upload_id}")).status_code == 404
    finally:
        stack.start_worker()

    done = await finished(acme, video["id"])
    assert done["status"] == "completed", done
    (sent,) = [t for t in await sim_tasks(stack) if t["prompt"].startswith(prompt)]
    (image,) = sent["request"]["images"]
    assert image["sha256"] == hashlib.sha256(data).hexdigest() and image["mime"] == "image/png"
    assert sent["video"]["first_frame"] is True
    balance, held, _ = await credits(acme)
    assert (balance, held) == (100_000 - 200, 0)
    await assert_ledger()
