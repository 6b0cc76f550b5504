"""The simulator's real-world quirks and per-task videos, driven in-process over HTTP."""

import base64
import hashlib
import io
from collections.abc import AsyncIterator, Callable

import av
import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette

from simulator.answers import RAI_REASON
from simulator.app import create_app

KEY = "quirks-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
T0 = 1_750_000_000.0
BASE = "http://sim.test"
SUBMIT = "/google/v1/models/veo/videos"
RED = (220, 30, 40)
BLUE = (30, 60, 220)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(clock: FakeClock) -> Callable[..., httpx.AsyncClient]:
    def make(**options: object) -> httpx.AsyncClient:
        settings: dict[str, object] = {"clock": clock, "rng_seed": 3, "submit_timeout_delay": 0.2}
        settings.update(options)
        app: Starlette = create_app(KEY, **settings)  # type: ignore[arg-type]
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)

    return make


@pytest.fixture
async def client(make_client: Callable[..., httpx.AsyncClient]) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as http:
        yield http


async def submit(
    client: httpx.AsyncClient, prompt: str, model: str = "veo3", **fields: object
) -> httpx.Response:
    body = {"prompt": prompt, "model": model, "enhance_prompt": False, **fields}
    return await client.post(SUBMIT, json=body, headers=AUTH)


async def submit_ok(client: httpx.AsyncClient, prompt: str, **fields: object) -> str:
    response = await submit(client, prompt, **fields)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["data"]
    return task_id


async def query(client: httpx.AsyncClient, task_id: str) -> httpx.Response:
    return await client.get(f"/google/v1/tasks/{task_id}", headers=AUTH)


async def sim_tasks(client: httpx.AsyncClient) -> dict[str, dict[str, object]]:
    tasks = (await client.get("/_sim/tasks")).json()["tasks"]
    return {task["task_id"]: task for task in tasks}


def png_uri(rgb: tuple[int, int, int]) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), rgb).save(buffer, "PNG")
    data = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode(), data


def close_to(pixel: tuple[int, ...], rgb: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 40 for a, b in zip(pixel, rgb, strict=False))


# --- submit ---------------------------------------------------------------------------


@pytest.mark.parametrize(("outcome", "status"), [("502", 502), ("504", 504), ("520", 520)])
async def test_proxy_answer_on_submit_comes_after_the_task_was_created(
    client, clock, outcome, status
):
    response = await submit(client, f"fox [sim:duration=10][sim:submit={outcome}]")
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    (task,) = (await sim_tasks(client)).values()
    clock.advance(10)
    data = (await query(client, str(task["task_id"]))).json()["data"]
    assert data["status"] == "SUCCESS"


@pytest.mark.parametrize("outcome", ["521", "522", "523", "401", "403", "503", "429_empty"])
async def test_answers_that_never_reached_the_gateway_create_no_task(client, outcome):
    response = await submit(client, f"fox [sim:submit={outcome}]")
    assert response.status_code == int(outcome.split("_")[0])
    assert await sim_tasks(client) == {}


async def test_submit_times_limits_the_scripted_submit_answer_to_the_first_submits(client):
    prompt = "fox [sim:submit=504][sim:submit_times=1]"
    assert (await submit(client, prompt)).status_code == 504
    assert (await submit(client, prompt)).status_code == 200
    assert len(await sim_tasks(client)) == 2


async def test_no_channel_names_the_model(client):
    response = await submit(client, "fox [sim:submit=503]", model="veo3.1-pro")
    assert "veo3.1-pro" in response.json()["error"]["message"]
    assert response.json()["error"]["type"] == "new_api_error"


@pytest.mark.parametrize("outcome", ["429", "429_busy", "429_limit", "429_empty", "503"])
async def test_retry_after_directive_sets_the_header_on_429_and_503(client, outcome):
    response = await submit(client, f"fox [sim:submit={outcome}][sim:retry_after=3600]")
    assert response.headers["retry-after"] == "3600"


async def test_retry_after_directive_sets_the_header_on_poll_429s(client):
    task_id = await submit_ok(client, "fox [sim:poll429=1][sim:poll429_empty=1][sim:retry_after=0]")
    answers = [await query(client, task_id) for _ in range(2)]
    assert [a.headers.get("retry-after") for a in answers] == ["0", "0"]
    assert answers[1].content == b""


@pytest.mark.parametrize(
    ("shape", "prefix"), [("task_id", "veo3:"), ("id", "veo3:"), ("openai", "task_")]
)
async def test_other_submit_shapes_carry_ids_that_the_query_and_the_file_accept(
    client, clock, shape, prefix
):
    response = await submit(client, f"fox [sim:duration=1][sim:submit_shape={shape}]")
    body = response.json()
    task_id = body.get("task_id") or body["id"]
    assert task_id.startswith(prefix)
    clock.advance(1)
    data = (await query(client, task_id)).json()["data"]
    assert data["status"] == "SUCCESS"
    assert (await client.get(data["data"]["video_url"])).status_code == 200


# --- query ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("place", "find"),
    [
        ("video_url", lambda data: data["data"]["video_url"]),
        ("fail_reason", lambda data: data["fail_reason"]),
        ("result_url", lambda data: data["result_url"]),
        ("output", lambda data: data["data"]["output"]),
        ("outputs", lambda data: data["data"]["outputs"][0]),
    ],
)
async def test_the_url_is_where_url_at_puts_it_and_serves_the_video(client, clock, place, find):
    task_id = await submit_ok(client, f"fox [sim:duration=1][sim:url_at={place}]")
    running = (await query(client, task_id)).json()["data"]
    assert "mp4" not in str(running)
    clock.advance(1)
    data = (await query(client, task_id)).json()["data"]
    url = find(data)
    assert url == f"{BASE}/files/{task_id}.mp4"
    assert str(data).count(".mp4") == 1
    assert (await client.get(url)).headers["content-type"] == "video/mp4"


async def test_result_url_view_is_the_task_dto_in_every_phase(client, clock):
    task_id = await submit_ok(client, "a fox [sim:duration=10][sim:url_at=result_url]")
    running = (await query(client, task_id)).json()["data"]
    assert running["result_url"] == ""
    assert running["properties"] == {"input": "a fox [sim:duration=10][sim:url_at=result_url]"}
    assert running["data"]["done"] is False
    clock.advance(10)
    assert (await query(client, task_id)).json()["data"]["data"]["done"] is True


@pytest.mark.parametrize(
    ("directives", "words"),
    [
        (
            "[sim:queued_word=QUEUED][sim:running_word=running][sim:success_word=succeeded]",
            ["QUEUED", "running", "succeeded"],
        ),
        ("[sim:failure_word=expired][sim:fail=gone]", ["NOT_START", "IN_PROGRESS", "expired"]),
        ("[sim:lowercase][sim:failure_word=fail][sim:fail=x]", ["pending", "processing", "fail"]),
        ("[sim:success_word=Completed]", ["NOT_START", "IN_PROGRESS", "Completed"]),
    ],
)
async def test_status_words_replace_the_documented_ones(client, clock, directives, words):
    task_id = await submit_ok(client, f"fox [sim:duration=100]{directives}")
    seen = []
    for elapsed in (0, 50, 50):
        clock.advance(elapsed)
        seen.append((await query(client, task_id)).json()["data"]["status"])
    assert seen == words


async def test_safety_is_a_success_without_url_carrying_the_filter_count(client, clock):
    task_id = await submit_ok(client, "fox [sim:duration=1][sim:safety]")
    clock.advance(1)
    data = (await query(client, task_id)).json()["data"]
    assert data["status"] == "SUCCESS"
    response = data["data"]["response"]["generateVideoResponse"]
    assert response == {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [RAI_REASON]}
    assert "http" not in str(data)
    assert (await client.get(f"/files/{task_id}.mp4")).status_code == 404


async def test_openai_failure_is_answered_with_200_and_the_reason_in_error(client, clock):
    task_id = await submit_ok(client, "fox [sim:duration=1][sim:openai_failure][sim:fail=no]")
    assert (await query(client, task_id)).json()["code"] == "success"
    clock.advance(1)
    response = await query(client, task_id)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["error"]) == (
        "failed",
        {"message": "no", "code": "generation_failed"},
    )
    assert "code" not in body and "data" not in body


async def test_task_not_exist_right_after_submit_then_the_task(client):
    task_id = await submit_ok(client, "fox [sim:task_not_exist=2]")
    codes = [(await query(client, task_id)).status_code for _ in range(3)]
    assert codes == [400, 400, 200]


async def test_poll404_answers_nginxs_not_found_page_then_the_task(client):
    task_id = await submit_ok(client, "fox [sim:poll404=2]")
    answers = [await query(client, task_id) for _ in range(3)]
    assert [a.status_code for a in answers] == [404, 404, 200]
    assert answers[0].headers["content-type"].startswith("text/html")
    assert "<title>404 Not Found</title>" in answers[0].text


async def test_poll401_after_seconds_refuses_queries_from_that_moment(make_client, clock):
    async with make_client(time_scale=0.5) as client:
        task_id = await submit_ok(client, "fox [sim:duration=100][sim:poll401_after_s=20]")
        clock.advance(9.9)
        assert (await query(client, task_id)).status_code == 200
        clock.advance(0.1)
        refused = await query(client, task_id)
        assert refused.status_code == 401
        assert "额度已用尽" in refused.json()["error"]["message"]
        clock.advance(100)
        assert (await query(client, task_id)).status_code == 401


# --- quirks ---------------------------------------------------------------------------


async def test_key_exhausted_refuses_both_routes_while_tasks_keep_running(client, clock):
    task_id = await submit_ok(client, "fox [sim:duration=10]")
    config = await client.post("/_sim/config", json={"key_exhausted": True})
    assert config.json() == {"quirks": "", "key_exhausted": True}
    assert (await query(client, task_id)).status_code == 401
    assert (await submit(client, "another fox")).status_code == 401
    clock.advance(10)
    assert (await client.get("/_sim/stats")).json()["polls"] == {task_id: 1}
    await client.post("/_sim/config", json={"key_exhausted": False})
    assert (await query(client, task_id)).json()["data"]["status"] == "SUCCESS"


async def test_quirks_apply_to_every_task_unless_the_prompt_says_otherwise(make_client, clock):
    async with make_client(quirks="[sim:url_at=fail_reason] [sim:lowercase]") as client:
        quirky = await submit_ok(client, "fox [sim:duration=1]")
        plain = await submit_ok(client, "fox [sim:duration=1][sim:url_at=video_url]")
        clock.advance(1)
        quirky_data = (await query(client, quirky)).json()["data"]
        plain_data = (await query(client, plain)).json()["data"]
        assert (quirky_data["status"], quirky_data["fail_reason"]) == (
            "success",
            f"{BASE}/files/{quirky}.mp4",
        )
        assert plain_data["data"]["video_url"] == f"{BASE}/files/{plain}.mp4"
        changed = await client.post("/_sim/config", json={"quirks": "[sim:safety]"})
        assert changed.json()["quirks"] == "[sim:safety]"
        assert (await client.post("/_sim/config", json={"quirks": "[sim:x]"})).status_code == 400
        await client.post("/_sim/reset")
        assert (await client.get("/_sim/config")).json() == {
            "quirks": "[sim:url_at=fail_reason] [sim:lowercase]",
            "key_exhausted": False,
        }


# --- the video reflects the request ---------------------------------------------------


async def download(client: httpx.AsyncClient, clock: FakeClock, task_id: str) -> bytes:
    clock.advance(1)
    assert (await query(client, task_id)).json()["data"]["status"] == "SUCCESS"
    response = await client.get(f"/files/{task_id}.mp4")
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    return response.content


async def test_first_and_last_images_arrive_and_open_and_close_the_video(client, clock):
    red, red_bytes = png_uri(RED)
    blue, _ = png_uri(BLUE)
    task_id = await submit_ok(
        client,
        "The red frame dissolves into the blue one [sim:duration=1]",
        model="veo2-fast-frames",
        images=[red, blue],
    )
    task = (await sim_tasks(client))[task_id]
    images = task["request"]["images"]  # type: ignore[index]
    assert images[0] == {
        "source": "data",
        "mime": "image/png",
        "bytes": len(red_bytes),
        "sha256": hashlib.sha256(red_bytes).hexdigest(),
    }
    assert task["video"] == {
        "width": 320,
        "height": 180,
        "seconds": 5.0,
        "fps": 8,
        "audio": False,
        "first_frame": True,
        "last_frame": True,
        "elements": 0,
    }
    content = await download(client, clock, task_id)
    with av.open(io.BytesIO(content)) as container:
        assert not container.streams.audio
        frames = [frame.to_image() for frame in container.decode(video=0)]
    assert len(frames) == 40
    assert close_to(frames[0].getpixel((160, 40)), RED)
    assert close_to(frames[-1].getpixel((160, 40)), BLUE)


@pytest.mark.parametrize(
    ("fields", "size"),
    [
        ({"aspect_ratio": "16:9"}, (320, 180)),
        ({"aspect_ratio": "9:16"}, (180, 320)),
        ({"aspect_ratio": "16:9", "enable_upsample": True}, (480, 270)),
    ],
)
async def test_aspect_ratio_and_upsample_arrive_and_shape_the_video(client, clock, fields, size):
    task_id = await submit_ok(client, "a fox [sim:duration=1]", seed=11, **fields)
    request = (await sim_tasks(client))[task_id]["request"]
    assert request == {
        "prompt": "a fox [sim:duration=1]",
        "model": "veo3",
        "enhance_prompt": False,
        "seed": 11,
        **fields,
    }
    content = await download(client, clock, task_id)
    with av.open(io.BytesIO(content)) as container:
        video = container.streams.video[0]
        assert (video.width, video.height) == size
        assert container.streams.audio[0].codec_context.name == "aac"
        assert container.duration is not None
        assert container.duration / 1_000_000 == pytest.approx(8.0, abs=0.15)


async def test_two_tasks_with_the_same_request_share_one_render(clock):
    app = create_app(KEY, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        first = await submit_ok(client, "same fox [sim:duration=1]")
        second = await submit_ok(client, "same fox [sim:duration=1]")
        assert await download(client, clock, first) == await download(client, clock, second)
        other = await submit_ok(client, "another fox [sim:duration=1]")
        assert await download(client, clock, other) != await download(client, clock, first)
    assert app.state.simulator.renders.renders == 2
