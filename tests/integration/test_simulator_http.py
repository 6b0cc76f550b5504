"""The simulator's wire protocol, driven in-process through httpx.ASGITransport."""

import asyncio
import io
import json
import struct
import uuid
from collections.abc import AsyncIterator, Callable

import av
import httpx
import pytest
from starlette.applications import Starlette

from simulator.app import create_app
from simulator.video import render_mp4
from tests.eventually import eventually
from tests.listener import listening

KEY = "sim-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
T0 = 1_750_000_000.25
BASE = "http://sim.test"
SUBMIT = "/google/v1/models/veo/videos"


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def video() -> bytes:
    return render_mp4(seconds=0.5, width=64, height=36)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_app(clock: FakeClock, video: bytes) -> Callable[..., Starlette]:
    def make(**options: object) -> Starlette:
        settings: dict[str, object] = {
            "clock": clock,
            "rng_seed": 1,
            "video": video,
            "submit_timeout_delay": 0.3,
        }
        settings.update(options)
        return create_app(KEY, **settings)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def client(make_app: Callable[..., Starlette]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def submit(client: httpx.AsyncClient, prompt: str, **fields: object) -> httpx.Response:
    body = {"prompt": prompt, "model": "veo3-fast", "enhance_prompt": True, **fields}
    return await client.post(SUBMIT, json=body, headers=AUTH)


async def submit_ok(client: httpx.AsyncClient, prompt: str, **fields: object) -> str:
    response = await submit(client, prompt, **fields)
    assert response.status_code == 200, response.text
    task_id = response.json()["data"]
    assert isinstance(task_id, str)
    return task_id


async def query(client: httpx.AsyncClient, task_id: str) -> httpx.Response:
    return await client.get(f"/google/v1/tasks/{task_id}", headers=AUTH)


async def task_data(client: httpx.AsyncClient, task_id: str) -> dict[str, object]:
    response = await query(client, task_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["code"], body["message"]) == ("success", "")
    data: dict[str, object] = body["data"]
    return data


def inner(data: dict[str, object]) -> dict[str, object]:
    nested = data["data"]
    assert isinstance(nested, dict)
    return nested


# --- submit ---------------------------------------------------------------------------


async def test_submit_answers_success_with_the_task_id_as_a_plain_string(client):
    response = await submit(
        client,
        "a red fox",
        images=["https://example.com/a.png"],
        aspect_ratio="16:9",
        enable_upsample=True,
        seed=7,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == "success"
    assert body["message"] == ""
    assert uuid.UUID(body["data"]).version == 4


@pytest.mark.parametrize(
    "body",
    [
        {"model": "veo3"},
        {"prompt": "a fox"},
        {"prompt": "   ", "model": "veo3"},
        {"prompt": "a fox", "model": "veo3", "aspect_ratio": "4:3"},
        {"prompt": "a fox", "model": "veo3", "images": "https://example.com/a.png"},
        {"prompt": "a fox", "model": "veo3", "notify_hook": "ftp://example.com"},
        {"prompt": "a fox [sim:explode]", "model": "veo3"},
        ["not", "an", "object"],
    ],
)
async def test_invalid_submit_answers_400_invalid_request(client, body):
    response = await client.post(SUBMIT, json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert response.json()["data"] is None


async def test_submit_that_is_not_json_answers_400(client):
    response = await client.post(SUBMIT, content=b"{nope", headers=AUTH)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("directive", "status", "code"),
    [
        ("400", 400, "invalid_request"),
        ("429", 429, "upstream_overloaded"),
        ("500", 500, "do_request_failed"),
    ],
)
async def test_scripted_submit_error_creates_no_task(client, directive, status, code):
    response = await submit(client, f"fox [sim:submit={directive}]")
    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.json()["data"] is None
    stats = (await client.get("/_sim/stats")).json()
    assert (stats["submits"], stats["tasks"]) == (1, 0)


async def test_scripted_submit_429_carries_retry_after(client):
    response = await submit(client, "fox [sim:submit=429]")
    assert response.headers["retry-after"] == "1"
    assert response.json()["message"] == "upstream is overloaded"


async def test_submit500_fails_the_first_submits_of_that_prompt_then_succeeds(client):
    prompt = "fox [sim:submit500=2]"
    statuses = [(await submit(client, prompt)).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert (await submit(client, "other [sim:submit500_once]")).status_code == 500
    assert (await submit(client, "other [sim:submit500_once]")).status_code == 200
    stats = (await client.get("/_sim/stats")).json()
    assert (stats["submits"], stats["tasks"]) == (5, 2)


async def test_submit_timeout_creates_the_task_but_answers_too_late(client, clock):
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(submit(client, "fox [sim:duration=10][sim:submit=timeout]"), 0.05)
    (task_id,) = (await client.get("/_sim/stats")).json()["polls"]
    clock.advance(10)
    assert (await task_data(client, task_id))["status"] == "SUCCESS"


async def test_submit_timeout_answer_arrives_after_the_configured_delay(client):
    loop = asyncio.get_running_loop()
    started = loop.time()
    task_id = await submit_ok(client, "fox [sim:submit=timeout]")
    assert loop.time() - started >= 0.3
    assert (await query(client, task_id)).status_code == 200


# --- auth -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"Authorization": "Basic x"}],
)
async def test_wrong_or_missing_key_answers_401_on_both_gateway_routes(client, headers):
    task_id = await submit_ok(client, "fox")
    body = {"prompt": "fox", "model": "veo3", "enhance_prompt": False}
    answers = [
        await client.post(SUBMIT, json=body, headers=headers),
        await client.get(f"/google/v1/tasks/{task_id}", headers=headers),
    ]
    for response in answers:
        assert response.status_code == 401
        assert response.json() == {
            "code": "unauthorized",
            "message": "invalid api key",
            "data": None,
        }


# --- query ----------------------------------------------------------------------------


async def test_fresh_task_is_not_started_with_zero_times_and_no_url(client):
    task_id = await submit_ok(client, "fox [sim:duration=100]", notify_hook="")
    data = await task_data(client, task_id)
    assert data == {
        "task_id": task_id,
        "notify_hook": "",
        "action": "google-videos",
        "status": "NOT_START",
        "fail_reason": "",
        "submit_time": int(T0),
        "start_time": 0,
        "finish_time": 0,
        "progress": "0%",
        "data": {"id": task_id, "status": "pending", "status_update_time": int(T0 * 1000)},
    }


async def test_status_progresses_to_success_with_the_nested_video_url(client, clock):
    task_id = await submit_ok(client, "fox [sim:duration=100]")
    seen = []
    for elapsed in (5, 49, 50):
        clock.advance(elapsed)
        data = await task_data(client, task_id)
        seen.append((data["status"], data["progress"], inner(data)["status"]))
    assert seen == [
        ("SUBMITTED", "0%", "pending"),
        ("IN_PROGRESS", "50%", "processing"),
        ("SUCCESS", "100%", "completed"),
    ]
    data = await task_data(client, task_id)
    assert inner(data)["video_url"] == f"{BASE}/files/{task_id}.mp4"
    assert data["start_time"] == int(T0 + 8)
    assert data["finish_time"] == int(T0 + 100)
    assert inner(data)["status_update_time"] == int((T0 + 100) * 1000)


async def test_video_url_follows_the_host_the_query_came_in_on(make_app, clock):
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://10.1.2.3:8765") as other:
        task_id = await submit_ok(other, "fox [sim:duration=1]")
        clock.advance(1)
        url = inner(await task_data(other, task_id))["video_url"]
    assert url == f"http://10.1.2.3:8765/files/{task_id}.mp4"


async def test_default_duration_is_realistic_and_scaled(make_app, clock):
    transport = httpx.ASGITransport(app=make_app(time_scale=0.01))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as scaled:
        task_id = await submit_ok(scaled, "fox")
        clock.advance(0.29)
        assert (await task_data(scaled, task_id))["status"] != "SUCCESS"
        clock.advance(3.32)
        assert (await task_data(scaled, task_id))["status"] == "SUCCESS"


async def test_unknown_task_answers_400_task_not_exist(client):
    response = await query(client, "no-such-task")
    assert response.status_code == 400
    assert response.json() == {"code": "task_not_exist", "message": "task_not_exist", "data": None}


async def test_scripted_failure_carries_the_reason_and_no_url(client, clock):
    task_id = await submit_ok(client, "fox [sim:duration=10][sim:fail=当前内容违规]")
    clock.advance(10)
    data = await task_data(client, task_id)
    assert (data["status"], data["fail_reason"]) == ("FAILURE", "当前内容违规")
    assert inner(data)["status"] == "failed"
    assert "video_url" not in inner(data)
    assert (await client.get(f"/files/{task_id}.mp4")).status_code == 404


async def test_poll429_then_poll500_then_normal_answers(client):
    task_id = await submit_ok(client, "fox [sim:poll429=2][sim:poll500=1]")
    answers = [await query(client, task_id) for _ in range(4)]
    assert [a.status_code for a in answers] == [429, 429, 500, 200]
    assert answers[0].json() == {
        "code": "upstream_overloaded",
        "message": "upstream is overloaded",
        "data": None,
    }
    assert answers[0].headers["retry-after"] == "1"
    assert answers[2].json()["code"] == "get_task_failed"
    assert answers[2].json()["data"] is None


async def test_nourl_hides_the_url_from_the_first_finished_queries(client, clock):
    task_id = await submit_ok(client, "fox [sim:duration=1][sim:nourl=2]")
    assert "video_url" not in inner(await task_data(client, task_id))
    clock.advance(1)
    finished = [await task_data(client, task_id) for _ in range(3)]
    assert [d["status"] for d in finished] == ["SUCCESS"] * 3
    assert ["video_url" in inner(d) for d in finished] == [False, False, True]


async def test_unknown_status_comes_first_then_the_real_one(client):
    task_id = await submit_ok(client, "fox [sim:unknown_status=2]")
    statuses = [(await task_data(client, task_id))["status"] for _ in range(3)]
    assert statuses == ["WEIRD_STATE", "WEIRD_STATE", "NOT_START"]


async def test_lowercase_variant_uses_lowercase_statuses(client, clock):
    task_id = await submit_ok(client, "fox [sim:duration=100][sim:lowercase]")
    statuses = []
    for elapsed in (0, 50, 50):
        clock.advance(elapsed)
        statuses.append((await task_data(client, task_id))["status"])
    assert statuses == ["pending", "processing", "success"]


# --- files ----------------------------------------------------------------------------


async def test_download_serves_a_playable_mp4_without_auth(client, clock, video):
    task_id = await submit_ok(client, "fox [sim:duration=1]")
    clock.advance(1)
    url = inner(await task_data(client, task_id))["video_url"]
    assert isinstance(url, str)
    response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == len(response.content) == len(video)
    assert response.content[4:8] == b"ftyp"
    with av.open(io.BytesIO(response.content), mode="r") as container:
        assert len(list(container.decode(video=0))) > 0


async def test_download_before_success_or_of_an_unknown_task_is_404(client):
    task_id = await submit_ok(client, "fox [sim:duration=100]")
    assert (await client.get(f"/files/{task_id}.mp4")).status_code == 404
    assert (await client.get("/files/nothing.mp4")).status_code == 404


async def test_download404_directive_makes_the_file_404(client, clock):
    task_id = await submit_ok(client, "fox [sim:duration=1][sim:download404]")
    clock.advance(1)
    assert "video_url" in inner(await task_data(client, task_id))
    assert (await client.get(f"/files/{task_id}.mp4")).status_code == 404


async def test_size_directive_pads_the_mp4_with_a_free_box(client, clock, video):
    task_id = await submit_ok(client, "fox [sim:duration=1][sim:size=300000]")
    clock.advance(1)
    content = (await client.get(f"/files/{task_id}.mp4")).content
    assert len(content) == 300_000
    assert content[: len(video)] == video
    assert content[len(video) : len(video) + 8] == struct.pack(
        ">I4s", 300_000 - len(video), b"free"
    )
    with av.open(io.BytesIO(content), mode="r") as container:
        assert len(list(container.decode(video=0))) > 0


async def test_length_absent_streams_the_file_chunked(client, clock, video):
    task_id = await submit_ok(client, "fox [sim:duration=1][sim:size=300000][sim:length=absent]")
    clock.advance(1)
    response = await client.get(f"/files/{task_id}.mp4")
    assert "content-length" not in response.headers
    assert len(response.content) == 300_000 and response.content[: len(video)] == video


async def test_length_gzip_declares_only_the_compressed_bytes(client, clock, video):
    task_id = await submit_ok(client, "fox [sim:duration=1][sim:size=3000000][sim:length=gzip]")
    clock.advance(1)
    headers = {"Accept-Encoding": "identity"}  # what the worker asks; the CDN ignores it
    response = await client.get(f"/files/{task_id}.mp4", headers=headers)
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) < 3_000_000 // 10
    assert len(response.content) == 3_000_000 and response.content[: len(video)] == video


async def test_video_bytes_option_pads_every_download(make_app, clock):
    transport = httpx.ASGITransport(app=make_app(video_bytes=123_456))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as padded:
        task_id = await submit_ok(padded, "fox [sim:duration=1]")
        clock.advance(1)
        assert len((await padded.get(f"/files/{task_id}.mp4")).content) == 123_456


async def test_a_size_directive_above_the_maximum_is_clamped_to_it(make_app, clock):
    transport = httpx.ASGITransport(app=make_app(max_video_bytes=200_000, video_bytes=500_000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as capped:
        huge = await submit_ok(capped, "fox [sim:duration=1][sim:size=209715200]")
        padded = await submit_ok(capped, "fox [sim:duration=1]")
        small = await submit_ok(capped, "fox [sim:duration=1][sim:size=150000]")
        clock.advance(1)
        for task_id, size in ((huge, 200_000), (padded, 200_000), (small, 150_000)):
            response = await capped.get(f"/files/{task_id}.mp4")
            assert response.headers["content-length"] == str(size)
            assert len(response.content) == size


# --- controls -------------------------------------------------------------------------


async def test_stats_count_submits_polls_and_downloads_and_reset_clears_them(client, clock):
    task_id = await submit_ok(client, "fox [sim:duration=1]")
    await query(client, task_id)
    clock.advance(1)
    await query(client, task_id)
    await client.get(f"/files/{task_id}.mp4")
    stats = (await client.get("/_sim/stats")).json()
    assert stats["submits"] == 1
    assert stats["tasks"] == 1
    assert stats["polls"] == {task_id: 2}
    assert stats["downloads"] == {task_id: 1}
    assert (await client.post("/_sim/reset")).status_code == 200
    assert (await client.get("/_sim/stats")).json()["tasks"] == 0
    assert (await query(client, task_id)).json()["code"] == "task_not_exist"


# --- notify_hook ----------------------------------------------------------------------


async def test_finished_task_is_posted_to_its_notify_hook(make_app, clock):
    received: list[httpx.Request] = []

    def hook(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    app = make_app(notify_transport=httpx.MockTransport(hook))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=BASE) as client,
    ):
        task_id = await submit_ok(
            client, "fox [sim:duration=10]", notify_hook="http://hooks.test/veo"
        )
        await submit_ok(client, "no hook [sim:duration=10]")
        clock.advance(10)
        await eventually(lambda: len(received) == 1, 3.0)
        stats = (await client.get("/_sim/stats")).json()
    assert str(received[0].url) == "http://hooks.test/veo"
    body = json.loads(received[0].content)
    assert body["task_id"] == task_id
    assert body["status"] == "SUCCESS"
    assert body["notify_hook"] == "http://hooks.test/veo"
    assert body["data"]["video_url"] == f"{BASE}/files/{task_id}.mp4"
    assert stats["notifications"] == {"sent": 1}


async def test_a_notify_hook_answering_for_ever_is_not_read(make_app, clock):
    """Only the hook's status counts: an endless answer body is dropped unread."""
    cut = asyncio.Event()

    async def endless(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(100_000):  # 6.5 GB: a reader of it all would never finish
                writer.write(b"10000\r\n" + b"x" * 65536 + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0)
        except ConnectionError:
            cut.set()
            raise

    app = make_app()
    transport = httpx.ASGITransport(app=app)
    async with (
        listening() as hook,
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=BASE) as client,
    ):
        hook.answers["/veo"] = endless
        await submit_ok(client, "fox [sim:duration=1]", notify_hook=hook.url("/veo"))
        clock.advance(1)
        await eventually(lambda: bool(app.state.simulator.store.notifications), 5.0)
        await asyncio.wait_for(cut.wait(), 5.0)
    assert dict(app.state.simulator.store.notifications) == {"sent": 1}


async def test_notify_failure_rate_one_drops_every_callback(make_app, clock):
    received: list[httpx.Request] = []

    def hook(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    app = make_app(notify_failure_rate=1.0, notify_transport=httpx.MockTransport(hook))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=BASE) as client,
    ):
        await submit_ok(client, "fox [sim:duration=1]", notify_hook="http://hooks.test/veo")
        clock.advance(1)
        await eventually(lambda: bool(app.state.simulator.store.notifications), 3.0)
        stats = (await client.get("/_sim/stats")).json()
    assert stats["notifications"] == {"skipped": 1}
    assert received == []


async def test_unreachable_notify_hook_is_counted_and_ignored(make_app, clock):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    app = make_app(notify_transport=httpx.MockTransport(refuse))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=BASE) as client,
    ):
        task_id = await submit_ok(client, "fox [sim:duration=1]", notify_hook="http://x.test/")
        clock.advance(1)
        await eventually(lambda: bool(app.state.simulator.store.notifications), 3.0)
        assert (await task_data(client, task_id))["status"] == "SUCCESS"
    assert dict(app.state.simulator.store.notifications) == {"failed": 1}


async def test_sim_tasks_lists_prompts_and_timeline_times(client, clock):
    done_id = await submit_ok(client, "short one [sim:duration=2]")
    clock.advance(1)
    running_id = await submit_ok(client, "long one [sim:duration=30]")
    failed_id = await submit_ok(client, "bad one [sim:duration=1.5] [sim:fail=nope]")
    clock.advance(2)
    tasks = {t["task_id"]: t for t in (await client.get("/_sim/tasks")).json()["tasks"]}
    assert tasks[done_id] == {
        "task_id": done_id,
        "prompt": "short one [sim:duration=2]",
        "status": "SUCCESS",
        "submitted_at": T0,
        "finished_at": T0 + 2,
        "request": {
            "prompt": "short one [sim:duration=2]",
            "model": "veo3-fast",
            "enhance_prompt": True,
        },
        "video": {
            "width": 320,
            "height": 180,
            "seconds": 8.0,
            "fps": 8,
            "audio": True,
            "first_frame": False,
            "last_frame": False,
            "elements": 0,
        },
    }
    assert tasks[running_id]["status"] == "SUBMITTED"
    assert tasks[running_id]["submitted_at"] == T0 + 1
    assert tasks[running_id]["finished_at"] is None
    assert tasks[failed_id]["status"] == "FAILURE"
    assert tasks[failed_id]["finished_at"] == T0 + 2.5
    assert (await client.post("/_sim/reset")).status_code == 200
    assert (await client.get("/_sim/tasks")).json() == {"tasks": []}
