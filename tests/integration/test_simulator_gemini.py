"""The simulator's Gemini side: every body of ``../shared/upstream-corpus/gemini/`` in its
shape, and the real ``GeminiClient`` through it (in process, over ASGI): the key, the
roles, what Google refuses, the outcomes the directives script, and the keyed download."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from schemas.catalogue import ImageRole
from schemas.problems import FailureCode
from simulator.app import create_app
from simulator.video import render_mp4
from tests import corpus
from tests.integration.images import PNG
from tests.integration.test_simulator_corpus import FakeClock, shape
from worker.upstream import (
    InlineImage,
    OperatorProblemError,
    SubmitRequest,
    TransientUpstreamError,
    UpstreamState,
)
from worker.upstream.gemini import GeminiClient

KEY = "gemini-sim-key"
BASE = "http://sim.test"
VEO31 = "veo-3.1-generate-preview"
T0 = 1_750_221_308.0
VIDEO = render_mp4(seconds=0.25, width=64, height=36)


@pytest.fixture
async def sim() -> AsyncIterator[tuple[httpx.AsyncClient, FakeClock]]:
    clock = FakeClock()
    app = create_app(KEY, clock=clock, rng_seed=1, video=VIDEO, submit_timeout_delay=0.1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http, clock


def gemini(http: httpx.AsyncClient, key: str = KEY) -> GeminiClient:
    return GeminiClient(BASE, key, transport=http._transport)


def body(prompt: str, **parameters: Any) -> dict[str, Any]:
    return {"instances": [{"prompt": prompt}], "parameters": {"sampleCount": 1, **parameters}}


# --- the corpus ---------------------------------------------------------------------------

Case = Callable[[httpx.AsyncClient, FakeClock], Awaitable[httpx.Response]]
AUTH = {"x-goog-api-key": KEY}


def submitting(directives: str) -> Case:
    async def case(http: httpx.AsyncClient, clock: FakeClock) -> httpx.Response:
        url = f"/v1beta/models/{VEO31}:predictLongRunning"
        return await http.post(url, json=body(f"a fox {directives}"), headers=AUTH)

    return case


def polling(directives: str, at: float) -> Case:
    async def case(http: httpx.AsyncClient, clock: FakeClock) -> httpx.Response:
        submitted = await submitting(f"[sim:duration=100] {directives}")(http, clock)
        assert submitted.status_code == 200, submitted.text
        clock.now = T0 + at
        return await http.get(f"/v1beta/{submitted.json()['name']}", headers=AUTH)

    return case


CASES: dict[tuple[str, str], Case] = {
    ("g01_submit.json", "submit"): submitting(""),
    ("g02_running.json", "poll"): polling("", at=50),
    ("g03_done_ok.json", "poll"): polling("", at=100),
    ("g04_done_rai.json", "poll"): polling("[sim:safety]", at=100),
    ("g05_done_error.json", "poll"): polling("[sim:fail=Internal error encountered.]", at=100),
    ("g06_429.json", "submit"): submitting("[sim:submit=429]"),
    ("g06_429.json", "poll"): polling("[sim:poll429=1]", at=50),
}
ENTRIES = corpus.manifest("gemini")


def test_every_gemini_corpus_answer_is_reproduced():
    played = {(e["file"], op) for e in ENTRIES for op in e["request"].split(" or ")}
    assert played == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES), ids=lambda case: f"{case[0]}-{case[1]}")
async def test_the_simulator_sends_the_corpus_shape(sim, case):
    http, clock = sim
    clock.now = T0
    entry = next(e for e in ENTRIES if e["file"] == case[0])
    response = await CASES[case](http, clock)
    assert response.status_code == entry["http_status"]
    assert "retry-after" not in response.headers
    expected = json.loads((corpus.CORPUS / "gemini" / case[0]).read_text(encoding="utf-8"))
    assert shape(response.json()) == shape(expected)


# --- the client through the simulator -----------------------------------------------------


async def _tasks(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    return list((await http.get("/_sim/tasks")).json()["tasks"])


async def test_first_and_last_frame_travel_inline_and_the_video_comes_with_the_key(sim):
    http, clock = sim
    clock.now = T0
    frames = [
        InlineImage(ImageRole.FIRST_FRAME, "image/png", PNG),
        InlineImage(ImageRole.LAST_FRAME, "image/png", PNG),
    ]
    request = SubmitRequest(
        VEO31, "a kite [sim:duration=10]", False, images=frames, aspect_ratio="9:16",
        resolution="1080p", duration_seconds=8, negative_prompt="fog",
    )  # fmt: skip
    async with gemini(http) as client:
        operation = (await client.submit(request)).task_id
        assert (await client.poll(operation)).state is UpstreamState.RUNNING
        clock.now = T0 + 10
        done = await client.poll(operation)
        assert done.state is UpstreamState.SUCCEEDED and done.video_url
        async with client.download(done.video_url) as stream:
            assert b"".join([c async for c in stream.chunks]) == VIDEO
    [task] = await _tasks(http)
    sent = task["request"]["instances"][0]
    assert set(sent) == {"prompt", "image", "lastFrame"}
    assert sent["image"]["bytes"] == len(PNG)
    assert task["request"]["parameters"]["durationSeconds"] == 8
    video = task["video"]
    assert (video["width"], video["height"], video["seconds"]) == (270, 480, 8)
    assert video["first_frame"] and video["last_frame"] and video["audio"]


async def test_reference_images_become_the_videos_elements(sim):
    http, _ = sim
    refs = [InlineImage(ImageRole.REFERENCE, "image/png", PNG)] * 3
    async with gemini(http) as client:
        await client.submit(SubmitRequest(VEO31, "three things", False, images=refs))
    [task] = await _tasks(http)
    assert [r["source"] for r in task["request"]["instances"][0]["referenceImages"]] == ["data"] * 3
    assert task["video"]["elements"] == 3 and not task["video"]["first_frame"]


@pytest.mark.parametrize(
    ("instance", "parameters", "fault"),
    [
        ({"image": {"inlineData": {"data": "x", "mimeType": "image/png"}}}, {}, "image must be"),
        ({}, {"seed": 3}, "seed parameter is not supported"),
        ({}, {"generateAudio": True}, "generateAudio parameter is not supported"),
        ({}, {"durationSeconds": "8"}, "durationSeconds must be a number"),
        ({}, {"resolution": "1080p", "durationSeconds": 4}, "need durationSeconds 8"),
    ],
)
async def test_what_google_refuses_is_refused(sim, instance, parameters, fault):
    http, _ = sim
    payload = body("a fox", **parameters)
    payload["instances"][0].update(instance)
    response = await http.post(
        f"/v1beta/models/{VEO31}:predictLongRunning", json=payload, headers=AUTH
    )
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert fault in response.json()["error"]["message"]


async def test_a_last_frame_on_a_model_without_one_and_an_unknown_model_are_refused(sim):
    http, _ = sim
    image = {"bytesBase64Encoded": base64.b64encode(PNG).decode(), "mimeType": "image/png"}
    payload = body("a fox")
    payload["instances"][0].update(image=image, lastFrame=image)
    refused = await http.post(
        "/v1beta/models/veo-3.0-generate-001:predictLongRunning", json=payload, headers=AUTH
    )
    assert refused.status_code == 400 and "lastFrame" in refused.json()["error"]["message"]
    unknown = await http.post("/v1beta/models/veo-9:predictLongRunning", json=payload, headers=AUTH)
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("directives", "code", "reason"),
    [
        ("[sim:safety]", FailureCode.SAFETY_FILTERED, "safety filters"),
        ("[sim:fail=The generation failed.]", FailureCode.UPSTREAM_FAILED, "generation failed"),
    ],
)
async def test_scripted_outcomes_end_the_operation(sim, directives, code, reason):
    http, clock = sim
    clock.now = T0
    async with gemini(http) as client:
        name = (
            await client.submit(SubmitRequest(VEO31, f"x [sim:duration=5] {directives}", False))
        ).task_id
        clock.now = T0 + 5
        failure = (await client.poll(name)).failure()
    assert failure is not None and failure.code is code and reason in failure.message


async def test_an_inline_video_is_served_from_the_operation(sim):
    http, clock = sim
    clock.now = T0
    async with gemini(http) as client:
        name = (
            await client.submit(SubmitRequest(VEO31, "x [sim:duration=5] [sim:inline]", False))
        ).task_id
        clock.now = T0 + 5
        done = await client.poll(name)
        assert done.video_url and "#encodedVideo=0" in done.video_url
        async with client.download(done.video_url) as stream:
            assert b"".join([c async for c in stream.chunks]) == VIDEO


async def test_the_key_check_and_the_download_need_the_key(sim):
    http, clock = sim
    clock.now = T0
    async with gemini(http) as right:
        await right.check()
        name = (await right.submit(SubmitRequest(VEO31, "x [sim:duration=1]", False))).task_id
    async with gemini(http, "wrong-key") as wrong:
        with pytest.raises(OperatorProblemError) as refused:
            await wrong.check()
    assert refused.value.cause == "auth" and refused.value.status == 400
    clock.now = T0 + 1
    uri = f"/v1beta/files/{name.rsplit('/', 1)[1]}:download?alt=media"
    assert (await http.get(uri)).status_code == 403
    keyed = await http.get(uri, headers=AUTH)
    assert keyed.status_code == 302 and keyed.headers["location"].endswith(".mp4")


async def test_a_429_on_submit_is_transient_and_creates_nothing(sim):
    http, _ = sim
    async with gemini(http) as client:
        with pytest.raises(TransientUpstreamError):
            await client.submit(SubmitRequest(VEO31, "busy [sim:submit=429]", False))
    assert await _tasks(http) == []
