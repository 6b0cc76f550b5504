"""The official ``openai`` SDK, unchanged, against the real API process (README, HTTP API).

The first tests run the API alone (videos stay queued); the last one adds the simulator
and an ARQ worker for ``create_and_poll`` + ``download_content``.
"""

from __future__ import annotations

import functools
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine

from cli.supervise import Child, ChildExited, free_port, http_ok
from core.bootstrap import prepare
from schemas.settings import Settings
from tests.integration.images import PNG_URI, png_bytes
from tests.integration.stack import SIM_KEY, Stack, base_env, simulator

ADMIN_KEY = "gv_sdk_admin_key_0123456789abcdef"
ADMIN_USER = "admin"  # the bootstrap admin key acts for client "admin"
START_DEADLINE = 30.0

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


@dataclass
class Api:
    base_url: str
    proc: Child

    def sdk(self, key: str = ADMIN_KEY) -> OpenAI:
        return OpenAI(base_url=f"{self.base_url}/v1", api_key=key, max_retries=0, timeout=30)

    def http(self, key: str = ADMIN_KEY) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def grant(self, user: str, amount: int) -> None:
        with self.http() as c:
            response = c.post(f"/v1/credits/{user}/grants", json={"amount": amount, "reason": "t"})
        assert response.status_code == 200, response.text

    def credits(self, user: str) -> tuple[int, int]:
        with self.http() as c:
            body = c.get(f"/v1/credits/{user}").json()
        return body["balance"], body["held"]


def start_api(env: dict[str, str], log_path: Path) -> Iterator[Api]:
    """``python -m cli.main api`` on a free port, until it answers /healthz."""
    for attempt in range(3):
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "cli.main", "api", "--host", "127.0.0.1"]
        api = Child("api", [*command, "--port", str(port)], env=env, output=log_path)
        try:
            api.start(
                functools.partial(http_ok, f"{base_url}/healthz"),
                timeout=START_DEADLINE,
                what=f"api on {port}",
                interval=0.05,
            )
        except ChildExited:
            if attempt == 2:  # most likely the port was taken between probe and bind
                raise
            continue
        try:
            yield Api(base_url, api)
        finally:
            api.stop(grace=15)
        return


def api_env(pg_url: str, redis_url: str, storage_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_VIDEO_")}
    return {
        **env,
        "GOOGLE_VIDEO_ENVIRONMENT": "test",
        "GOOGLE_VIDEO_DATABASE_URL": pg_url,
        "GOOGLE_VIDEO_REDIS_URL": redis_url,
        "GOOGLE_VIDEO_STORAGE_URL": storage_dir.as_uri(),
        "GOOGLE_VIDEO_ADMIN_KEY": ADMIN_KEY,
        "GOOGLE_VIDEO_API_KEY_CACHE_SECONDS": "0",
        "GOOGLE_VIDEO_DATA_DIR": str(storage_dir.parent),
    }


@pytest.fixture(scope="module")
def api_process(
    migrated: AsyncEngine, pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("sdk-api")
    yield from start_api(api_env(pg_url, redis_url, root / "storage"), root / "api.log")


@pytest.fixture
async def api(api_process: Api, engine: AsyncEngine, pg_url: str, tmp_path: Path) -> Api:
    """The API process over a fresh database: ``engine`` empties it, then the start-up
    bootstrap (runtime config, admin key) runs again as the process ran it."""
    settings = Settings(
        environment="test", data_dir=tmp_path, database_url=pg_url, admin_key=ADMIN_KEY
    )
    await prepare(settings, engine)
    return api_process


@pytest.fixture
def sdk(api: Api) -> OpenAI:
    api.grant(ADMIN_USER, 1000)
    return api.sdk()


def extension(video: Any, name: str) -> Any:
    """Our fields beyond the SDK's ``Video`` model travel as pydantic extras."""
    return (video.model_extra or {}).get(name, getattr(video, name, None))


# --- API alone: the SDK's request and response shapes ---------------------------------


def test_create_returns_queued_video(sdk: OpenAI, api: Api) -> None:
    video = sdk.videos.create(model="veo3-fast", prompt="a paper boat on a river")
    assert video.id.startswith("video_")
    assert video.object == "video"
    assert video.status == "queued"
    assert video.model == "veo3-fast"
    assert video.progress == 0
    assert video.created_at > 0
    assert extension(video, "price") == 80
    assert api.credits(ADMIN_USER) == (920, 80)


def test_create_with_extra_body_extensions_round_trips_them(sdk: OpenAI, api: Api) -> None:
    api.grant("u1", 500)
    video = sdk.videos.create(
        model="veo3-fast",
        prompt="a paper boat on a river",
        extra_body={"user": "u1", "metadata": {"k": "v"}, "enhance_prompt": True},
    )
    assert video.status == "queued"
    assert extension(video, "user") == "u1"
    assert extension(video, "metadata") == {"k": "v"}
    assert extension(video, "enhance_prompt") is True
    assert extension(video, "task_type") == "text_to_video"
    assert api.credits("u1") == (420, 80)
    assert api.credits(ADMIN_USER) == (1000, 0)


def test_create_with_extra_body_user_and_enhance_prompt(sdk: OpenAI, api: Api) -> None:
    api.grant("u2", 100)
    video = sdk.videos.create(
        model="veo3-fast",
        prompt="a paper boat on a river",
        extra_body={"user": "u2", "enhance_prompt": True, "seed": 7},
    )
    assert extension(video, "user") == "u2"
    assert extension(video, "enhance_prompt") is True
    assert api.credits("u2") == (20, 80)


def test_create_with_extra_body_images_list_makes_image_to_video(sdk: OpenAI) -> None:
    """A list in ``extra_body`` reaches the form as repeated ``images[]`` fields."""
    video = sdk.videos.create(
        model="veo2-fast-frames",
        prompt="from first to last frame",
        extra_body={"images": [PNG_URI, "https://images.example/last.png"]},
    )
    assert extension(video, "task_type") == "image_to_video"
    images = extension(video, "images")
    assert images[0].startswith("stored:inputs/") and images[1] == "https://images.example/last.png"


def test_retrieve_returns_the_created_video(sdk: OpenAI) -> None:
    created = sdk.videos.create(model="veo3-fast", prompt="a paper boat")
    video = sdk.videos.retrieve(created.id)
    assert (video.id, video.status, video.prompt) == (created.id, "queued", "a paper boat")
    assert extension(video, "internal_status") == "queued"


def test_list_iterates_over_every_video(sdk: OpenAI) -> None:
    ids = {sdk.videos.create(model="veo3-fast", prompt=f"boat {n}").id for n in range(3)}
    page = sdk.videos.list()
    assert {v.id for v in page} == ids
    assert {v.id for v in sdk.videos.list(limit=1)} == ids  # the SDK follows `after`


def test_delete_reports_deleted_and_releases_the_hold(sdk: OpenAI, api: Api) -> None:
    created = sdk.videos.create(model="veo3-fast", prompt="a paper boat")
    deleted = sdk.videos.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "video.deleted")
    assert api.credits(ADMIN_USER) == (1000, 0)
    with pytest.raises(openai.NotFoundError):
        sdk.videos.retrieve(created.id)


def test_unknown_model_raises_bad_request_with_code(sdk: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.videos.create(model="sora-2", prompt="a paper boat")
    assert info.value.status_code == 400
    assert info.value.code == "unknown_model"
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == "unknown_model"
    assert "veo3" in body["message"]


def test_insufficient_credits_raises_api_status_error_402(api: Api) -> None:
    client = api.sdk()  # no grant: the admin user has nothing
    with pytest.raises(openai.APIStatusError) as info:
        client.videos.create(model="veo3", prompt="a paper boat")
    assert info.value.status_code == 402
    assert info.value.code == "insufficient_credits"
    assert info.value.response.headers["content-type"].startswith("application/problem+json")


def test_bad_api_key_raises_authentication_error(api: Api) -> None:
    with pytest.raises(openai.AuthenticationError):
        api.sdk("gv_not_a_key").videos.list()


def test_multipart_input_reference_makes_image_to_video(sdk: OpenAI, api: Api) -> None:
    video = sdk.videos.create(
        model="veo3-pro-frames",
        prompt="the first frame comes alive",
        input_reference=("first.png", png_bytes(), "image/png"),
    )
    assert video.status == "queued"
    assert extension(video, "task_type") == "image_to_video"
    assert extension(video, "price") == 200
    images = extension(video, "images")
    assert len(images) == 1 and images[0].startswith("stored:inputs/")
    assert api.credits(ADMIN_USER) == (800, 200)


def test_multipart_input_reference_that_is_not_an_image_is_refused(sdk: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.videos.create(
            model="veo3-pro-frames",
            prompt="p",
            input_reference=("first.png", b"PK\x03\x04" + b"\x00" * 64, "image/png"),
        )
    assert info.value.code == "invalid_image"


# --- with the simulator and a worker: the whole round trip ----------------------------
# Module-scoped, and last in the file, so the worker only runs for these tests.


@pytest.fixture(scope="module")
def stack(migrated: AsyncEngine, pg_url: str, redis_url: str, tmp_path_factory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("sdk-stack")
    storage = {"GOOGLE_VIDEO_STORAGE_URL": (log_dir / "storage").as_uri()}
    with simulator(log_dir) as sim_url:
        result = Stack(base_env(pg_url, redis_url, storage, sim_url), sim_url, log_dir)
        result.start_worker()
        try:
            yield result
        finally:
            result.stop_workers()


@pytest.fixture
def e2e_api(stack: Stack, engine: AsyncEngine) -> Iterator[Api]:
    """The API with the worker's environment (same simulator, storage directory)."""
    env = {
        **stack.env,
        "GOOGLE_VIDEO_ADMIN_KEY": ADMIN_KEY,
        "GOOGLE_VIDEO_API_KEY_CACHE_SECONDS": "0",
    }
    assert env["GOOGLE_VIDEO_UPSTREAM_API_KEY"] == SIM_KEY
    yield from start_api(env, stack.log_dir / "api.log")


def test_create_and_poll_then_download_content_gives_mp4(e2e_api: Api) -> None:
    e2e_api.grant(ADMIN_USER, 1000)
    client = e2e_api.sdk()
    video = client.videos.create_and_poll(
        model="veo3", prompt="a paper boat [sim:duration=1]", poll_interval_ms=200
    )
    assert video.status == "completed", video
    assert video.progress == 100 and video.completed_at
    content = client.videos.download_content(video.id)
    data = content.read()
    assert data[4:8] == b"ftyp"
    assert len(data) == extension(video, "video_bytes")
    assert e2e_api.credits(ADMIN_USER) == (900, 0)
    thumbnail = Image.open(
        io.BytesIO(client.videos.download_content(video.id, variant="thumbnail").read())
    )
    thumbnail.load()  # decodes: a real image, not the MP4
    assert thumbnail.format == "WEBP" and thumbnail.width > thumbnail.height
    sheet = client.videos.download_content(video.id, variant="spritesheet").read()
    assert Image.open(io.BytesIO(sheet)).format == "JPEG"
    assert video.seconds == "8" and video.size == "320x180"  # measured, not echoed
