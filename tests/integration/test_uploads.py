"""``/v1/uploads`` on PostgreSQL and on SQLite: real images are stored with their facts,
everything else is a 4xx problem that leaves nothing behind, an upload is its client's
alone (404 to anyone else, on read, delete and create, with nothing held), a create copies
it, and the housekeeping removes an expired upload without touching videos made from it."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from openai import AsyncOpenAI
from sqlalchemy import select, update
from starlette.applications import Starlette

from core import uploads
from core.repo.tables import tasks
from core.repo.tables import uploads as upload_rows
from core.storage.keys import stored_key
from schemas.clock import utcnow
from schemas.settings import Settings
from tests.integration.conftest import BACKENDS
from tests.integration.images import bomb_png, picture
from tests.integration.test_hostile_kinds import assert_problem, post_form

# The SDK warns about the service it was written for, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")

PROMPT = "a paper boat on a puddle"
FRAMES_MODEL = "veo3-pro-frames"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def storage_root(settings: Settings) -> Path:
    return Path(settings.storage_url.removeprefix("file://"))


async def upload(client: httpx.AsyncClient, data: bytes, name: str = "a.png") -> httpx.Response:
    return await client.post("/v1/uploads", files={"file": (name, data, "image/png")})


async def test_png_jpeg_and_webp_are_uploaded_read_and_deleted(acme, settings):
    before = utcnow()
    for fmt, mime in [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]:
        data = picture(fmt, 320, 180)
        # The name and the part's type say PNG; the bytes decide.
        response = await upload(acme, data)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["id"].startswith("upload_") and body["object"] == "upload"
        assert (body["bytes"], body["mime_type"], body["width"], body["height"]) == (
            len(data),
            mime,
            320,
            180,
        )
        assert body["expires_at"] - body["created_at"] == settings.upload_ttl_seconds
        assert body["created_at"] >= int(before.timestamp())
        assert (await acme.get(f"/v1/uploads/{body['id']}")).json() == body

    deleted = await acme.delete(f"/v1/uploads/{body['id']}")
    assert deleted.json() == {"id": body["id"], "object": "upload.deleted", "deleted": True}
    assert_problem(await acme.get(f"/v1/uploads/{body['id']}"), 404, "not_found")
    assert_problem(await acme.delete(f"/v1/uploads/{body['id']}"), 404, "not_found")
    assert_problem(await acme.get("/v1/uploads/upload_zz"), 404, "not_found")
    assert len(list((storage_root(settings) / "uploads").iterdir())) == 2


def _form(parts: list[tuple[str, str | None, bytes]]) -> tuple[str, bytes]:
    """A multipart body of exactly these parts: (name, filename or None, content)."""
    boundary = "upload-boundary-3"
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", out


async def _post_form(client: httpx.AsyncClient, parts: list[tuple[str, str | None, bytes]]):
    content_type, body = _form(parts)
    return await client.post("/v1/uploads", content=body, headers={"content-type": content_type})


async def _streamed(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 1 << 20):
        yield body[start : start + (1 << 20)]


PNG = picture("PNG", 128, 128)
NOBODYS = "upload_" + "0" * 32
ELEVEN_MB = b"\x89PNG\r\n\x1a\n" + b"\x00" * (11 * 1024 * 1024)


async def test_hostile_uploads_are_problems_and_leave_nothing(acme, settings, engine):
    cases: list[tuple[str, list[tuple[str, str | None, bytes]], int, str]] = [
        ("truncated PNG", [("file", "a.png", PNG[: len(PNG) // 2])], 400, "invalid_image"),
        (
            "PNG magic, garbage",
            [("file", "a.png", PNG[:8] + b"\x00junk" * 500)],
            400,
            "invalid_image",
        ),
        ("decompression bomb", [("file", "a.png", bomb_png(20000))], 400, "invalid_image"),
        ("GIF", [("file", "a.gif", picture("GIF"))], 400, "invalid_image"),
        ("too small", [("file", "a.png", picture("PNG", 32, 32))], 400, "invalid_image"),
        ("empty part", [("file", "a.png", b"")], 400, "invalid_image"),
        ("11 MB", [("file", "a.png", ELEVEN_MB)], 413, "image_too_large"),
        ("two files", [("file", "a.png", PNG), ("file", "b.png", PNG)], 400, "validation_error"),
        (
            "another field",
            [("file", "a.png", PNG), ("purpose", None, b"x")],
            400,
            "validation_error",
        ),
        ("a text part", [("file", None, PNG)], 400, "validation_error"),
        ("another name", [("image", "a.png", PNG)], 400, "validation_error"),
        ("no part", [], 400, "validation_error"),
    ]
    for what, parts, status, code in cases:
        problem = assert_problem(await _post_form(acme, parts), status, code)
        print(what, "→", problem["detail"])
    # Streamed without a Content-Length: cut as it arrives.
    content_type, body = _form([("file", "a.png", ELEVEN_MB)])
    response = await acme.post(
        "/v1/uploads", content=_streamed(body), headers={"content-type": content_type}
    )
    assert_problem(response, 413, "image_too_large")
    response = await acme.post("/v1/uploads", json={"file": "x"})
    assert_problem(response, 415, "unsupported_media_type")
    async with engine.connect() as conn:
        assert (await conn.execute(select(upload_rows.c.id))).all() == []
    assert not (storage_root(settings) / "uploads").exists()


async def test_an_upload_is_its_clients_alone(acme, globex, engine):
    mine = (await upload(acme, PNG)).json()["id"]
    assert_problem(await globex.get(f"/v1/uploads/{mine}"), 404, "not_found")
    assert_problem(await globex.delete(f"/v1/uploads/{mine}"), 404, "not_found")
    for body in (
        {"prompt": PROMPT, "model": FRAMES_MODEL, "images": [mine]},
        {"prompt": PROMPT, "model": FRAMES_MODEL, "input_reference": {"file_id": mine}},
    ):
        theirs = assert_problem(await globex.post("/v1/videos", json=body), 404, "upload_not_found")
        # The same answer as for an id nobody has: nothing to learn from it.
        nobodys = (
            body | {"images": [NOBODYS]}
            if "images" in body
            else {**body, "input_reference": {"file_id": NOBODYS}}
        )
        unknown = assert_problem(
            await globex.post("/v1/videos", json=nobodys), 404, "upload_not_found"
        )
        assert unknown["detail"] == theirs["detail"].replace(mine, NOBODYS)
    credits = (await globex.get("/v1/credits/globex")).json()
    assert (credits["balance"], credits["held"]) == (1000, 0)
    async with engine.connect() as conn:
        assert (await conn.execute(select(tasks.c.id))).all() == []
    assert (await acme.get(f"/v1/uploads/{mine}")).status_code == 200


async def test_a_create_copies_the_upload_which_then_expires_alone(
    acme, app: Starlette, engine, settings
):
    data = picture("JPEG", 640, 360)
    made = (await upload(acme, data, "frame.jpg")).json()
    for body in (
        {"prompt": PROMPT, "model": FRAMES_MODEL, "images": [made["id"]]},
        # The OpenAI SDK's form: input_reference={"file_id": …}.
        {"prompt": PROMPT, "model": FRAMES_MODEL, "input_reference": {"file_id": made["id"]}},
    ):
        response = await acme.post("/v1/videos", json=body)
        assert response.status_code == 200, response.text
        video = response.json()
        assert video["task_type"] == "image_to_video" and video["price"] == 200
        (shown,) = video["images"]
        assert shown.startswith("stored:inputs/")
    key = stored_key(shown)
    assert key is not None
    storage = app.state.ctx.storage

    # Expired (the TTL passed): refused by the API at once, removed by the housekeeping.
    async with engine.begin() as conn:
        await conn.execute(update(upload_rows).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert_problem(await acme.get(f"/v1/uploads/{made['id']}"), 404, "not_found")
    again = {"prompt": PROMPT, "model": FRAMES_MODEL, "images": [made["id"]]}
    assert_problem(await acme.post("/v1/videos", json=again), 404, "upload_not_found")
    assert await storage.stat(f"uploads/{made['id']}.jpg") == len(data)
    assert await uploads.purge_expired(engine, storage) == 1
    assert await storage.stat(f"uploads/{made['id']}.jpg") is None
    async with engine.connect() as conn:
        assert (await conn.execute(select(upload_rows.c.id))).all() == []
    # The video's own copy is untouched.
    async with aclosing(await storage.open_stream(key)) as stream:
        copy = b"".join([chunk async for chunk in stream])
    assert hashlib.sha256(copy).digest() == hashlib.sha256(data).digest()
    assert await uploads.purge_expired(engine, storage) == 0


async def test_upload_ids_in_multipart_creates_and_the_openai_sdk(acme, admin, app: Starlette):
    await admin.put("/v1/admin/config", json={"max_concurrent_tasks_per_user": 10})
    made = (await upload(acme, PNG)).json()["id"]
    for fields in ({"images": made}, {"images[]": made}, {"input_reference[file_id]": made}):
        response = await post_form(acme, {"prompt": PROMPT, "model": FRAMES_MODEL, **fields})
        assert response.status_code == 200, response.text
        assert response.json()["images"][0].startswith("stored:inputs/")
    twice = {"prompt": PROMPT, "input_reference": "x", "input_reference[file_id]": made}
    assert_problem(await post_form(acme, twice), 400, "validation_error")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as http:
        sdk = AsyncOpenAI(
            base_url="http://testserver/v1", api_key=acme.api_key, http_client=http, max_retries=0
        )
        video = await sdk.videos.create(  # the form's images[] fields
            prompt=PROMPT, model=FRAMES_MODEL, extra_body={"images": [made]}
        )
    assert video.status == "queued" and video.model_extra["task_type"] == "image_to_video"
