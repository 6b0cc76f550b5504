"""Videos made through Google's Gemini API, end to end: the API in process, a real worker
process, the simulator speaking the Gemini protocol (``providers.gemini`` points at it),
PostgreSQL, Redis and moto S3; a remote image on an https server of this test, fetched by
the worker through the egress policy (which trusts this test's CA)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.eventually import eventually
from tests.integration.e2e.conftest import running_stack
from tests.integration.e2e.helpers import (
    create,
    credits,
    finished,
    reaches,
    read_video,
    sim_stats,
    sim_tasks,
)
from tests.integration.images import PNG, PNG_URI, data_uri, png_bytes
from tests.integration.stack import SIM_KEY, Stack
from tests.listener import Listener, listening, reply
from tests.tls import Certificates, make_certificates

VEO31, VEO3_FAST = "veo-3.1-generate-preview", "veo-3.0-fast-generate-001"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def stack(
    pg_url: str, redis_url: str, s3_endpoint: str, tmp_path_factory, certificates: Certificates
) -> Iterator[Stack]:
    extra = {"GOOGLE_VIDEO_EGRESS_CA_FILE": str(certificates.ca_file)}
    log_dir = tmp_path_factory.mktemp("gemini-stack-logs")
    with running_stack(pg_url, redis_url, s3_endpoint, log_dir, extra) as result:
        yield result


@pytest.fixture(autouse=True)
async def gemini_at_the_simulator(admin: httpx.AsyncClient, stack: Stack) -> None:
    access = {"gemini": {"base_url": stack.sim_url, "api_key": SIM_KEY}}
    response = await admin.put("/v1/admin/config", json={"providers": access})
    assert response.status_code == 200, response.text


@pytest.fixture
async def image_host(certificates: Certificates) -> AsyncIterator[Listener]:
    async with listening(certificates.server_context()) as listener:
        listener.answers["/photo.png"] = reply("200 OK", {"Content-Type": "image/png"}, PNG)
        yield listener


async def _received(stack: Stack, prompt: str) -> dict[str, Any]:
    """The simulator's record of the task whose prompt starts with `prompt`."""
    for task in await sim_tasks(stack):
        if task["prompt"].startswith(prompt):
            return dict(task)
    raise AssertionError(f"the simulator never received {prompt!r}")


async def test_text_to_video_with_chosen_length_and_shape_completes_and_captures(
    acme, stack, assert_ledger
):
    prompt = "a heron in reeds"
    video = await create(
        acme,
        f"{prompt} [sim:duration=50]",
        model=VEO3_FAST,
        seconds="4",
        size="720x1280",
        negative_prompt="people",
    )
    done = await finished(acme, video["id"])
    assert done["status"] == "completed", done
    assert (done["seconds"], done["width"], done["height"]) == ("4", 180, 320)  # measured
    sent = (await _received(stack, prompt))["request"]
    assert sent["parameters"] == {
        "sampleCount": 1,
        "aspectRatio": "9:16",
        "resolution": "720p",
        "durationSeconds": 4,
        "negativePrompt": "people",
    }
    balance, held, kinds = await credits(acme)
    assert (balance, held, kinds[0]) == (100_000 - 80, 0, "capture")
    await assert_ledger()


async def test_first_and_last_frame_and_reference_images_reach_google_inline(acme, stack):
    frames = await create(
        acme,
        "two frames [sim:duration=50]",
        model=VEO31,
        images=[PNG_URI, data_uri(png_bytes(3, 3))],
    )
    refs = await create(
        acme,
        "three elements [sim:duration=50]",
        model=VEO31,
        images=[PNG_URI] * 3,
        image_roles=["reference"] * 3,
    )
    assert (await finished(acme, frames["id"]))["status"] == "completed"
    assert (await finished(acme, refs["id"]))["status"] == "completed"
    two = await _received(stack, "two frames")
    assert set(two["request"]["instances"][0]) == {"prompt", "image", "lastFrame"}
    assert two["video"]["first_frame"] and two["video"]["last_frame"]
    three = await _received(stack, "three elements")
    assert len(three["request"]["instances"][0]["referenceImages"]) == 3
    assert three["video"]["elements"] == 3


async def test_a_remote_image_is_fetched_through_egress_and_a_private_one_refused(
    acme, stack, image_host, assert_ledger
):
    url = image_host.url("/photo.png", scheme="https")
    fetched = await create(acme, "from afar [sim:duration=50]", model=VEO3_FAST, images=[url])
    private = await create(
        acme, "from inside", model=VEO3_FAST, images=["https://10.1.2.3/photo.png"]
    )
    assert (await finished(acme, fetched["id"]))["status"] == "completed"
    assert len(image_host.on("/photo.png")) == 1
    sent = (await _received(stack, "from afar"))["request"]["instances"][0]["image"]
    assert (sent["source"], sent["bytes"], sent["mime"]) == ("data", len(PNG), "image/png")
    refused = await finished(acme, private["id"])
    assert refused["status"] == "failed"
    assert refused["error"]["code"] == "input_unavailable"
    assert "not an allowed target" in refused["error"]["message"]
    assert "from inside" not in str(await sim_tasks(stack))  # never submitted
    _, held, _ = await credits(acme)
    assert held == 0
    await assert_ledger()


@pytest.mark.parametrize(
    ("directives", "code"),
    [
        ("[sim:duration=50] [sim:safety]", "safety_filtered"),
        ("[sim:submit=400]", "upstream_rejected"),
        ("[sim:duration=50] [sim:fail=Internal error encountered.]", "upstream_failed"),
    ],
)
async def test_failures_release_with_their_code(acme, assert_ledger, directives, code):
    video = await finished(acme, (await create(acme, f"no {directives}", model=VEO31))["id"])
    assert video["status"] == "failed" and video["error"]["code"] == code, video
    balance, held, kinds = await credits(acme)
    assert (balance, held, kinds[0]) == (100_000, 0, "release")
    await assert_ledger()


async def test_a_429_then_success_submits_once_more_and_completes_once(acme, stack):
    prompt = "busy at first [sim:duration=50] [sim:submit=429] [sim:submit_times=1]"
    video = await finished(acme, (await create(acme, prompt, model=VEO3_FAST))["id"])
    assert video["status"] == "completed"
    assert len([t for t in await sim_tasks(stack) if t["prompt"] == prompt]) == 1
    assert (await sim_stats(stack))["submits"] >= 2


async def test_an_inline_video_is_stored(acme):
    video = await create(acme, "inline [sim:duration=50] [sim:inline]", model=VEO3_FAST)
    done = await finished(acme, video["id"])
    assert done["status"] == "completed" and done["video_bytes"] > 1000


async def test_a_refused_key_fails_a_submit_but_never_a_running_task(
    acme, admin, stack, assert_ledger
):
    running = await create(acme, "keeps going [sim:duration=600]", model=VEO31)
    await reaches(acme, running["id"], {"running"})
    wrong = {"providers": {"gemini": {"api_key": "wrong-gemini-key"}}}
    assert (await admin.put("/v1/admin/config", json=wrong)).status_code == 200
    log = stack.log_dir / "worker-0.log"

    def refused_polls() -> list[dict[str, Any]]:
        # The worker's log is JSON lines (not a terminal): its backed-off poll of this task.
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        return [
            line
            for line in lines
            if line.get("code") == "unauthorized" and line.get("task_id") == running["id"]
        ]

    await eventually(refused_polls, 10, what="the worker polling with the refused key")
    refused = await finished(acme, (await create(acme, "refused", model=VEO31))["id"])
    assert refused["status"] == "failed" and refused["error"]["code"] == "upstream_auth"
    assert "API key not valid" in refused["error"]["message"]
    assert (await read_video(acme, running["id"]))["internal_status"] == "running"
    right = {"providers": {"gemini": {"api_key": SIM_KEY}}}
    assert (await admin.put("/v1/admin/config", json=right)).status_code == 200
    assert (await finished(acme, running["id"]))["status"] == "completed"
    assert "upstream_operator_problem" in log.read_text()
    await assert_ledger()


# --- routing and failover -------------------------------------------------------------------

ROUTED = "veo3-fast-anywhere"


@pytest.fixture
async def routed(admin: httpx.AsyncClient, acme: httpx.AsyncClient, stack: Stack) -> str:
    """A public model made by the gateway (here the simulator's gateway side), else by
    Gemini's veo-3.0-fast-generate-001; returned once the worker has read it (its config
    is cached a second): a warm-up video reaches the gateway as the route's veo3-fast."""
    models = (await admin.get("/v1/admin/config")).json()["models"]
    entry = {
        "id": ROUTED,
        "price": 70,
        "aspect_ratios": ["16:9", "9:16"],
        "resolutions": ["720p"],
        "durations": [8],
        "routes": [
            {"provider": "simulator", "provider_model": "veo3-fast"},
            {"provider": "gemini", "provider_model": VEO3_FAST},
        ],
    }
    response = await admin.put("/v1/admin/config", json={"models": [*models, entry]})
    assert response.status_code == 200, response.text

    async def routed_by_the_worker() -> bool:
        warm = await create(acme, "warm-up [sim:duration=1]", model=ROUTED)
        await finished(acme, warm["id"])
        return "warm-up [sim:duration=1]" in {
            t["prompt"] for t in await sim_tasks(stack) if t["request"].get("model") == "veo3-fast"
        }

    await eventually(routed_by_the_worker, 15, what="the worker reading the routed model")
    return ROUTED


@pytest.mark.parametrize(
    "refusal", ["429", "503", "401"], ids=["saturated", "no-channel", "key-refused"]
)
async def test_a_gateway_that_created_nothing_fails_over_to_gemini_and_captures_once(
    acme, admin, stack, routed, assert_ledger, refusal
):
    prompt = f"failover {refusal} [sim:duration=50] [sim:submit={refusal}] [sim:submit_times=1]"
    video = await finished(acme, (await create(acme, prompt, model=routed))["id"])
    assert video["status"] == "completed" and video["price"] == 70, video
    assert "upstream_route" not in video  # a client never sees it
    shown = (await admin.get(f"/v1/videos/{video['id']}")).json()
    assert shown["upstream_route"] == f"gemini:{VEO3_FAST}"
    [task] = [t for t in await sim_tasks(stack) if t["prompt"] == prompt]
    assert task["request"]["parameters"]["durationSeconds"] == 8  # made on the Gemini side
    _, held, kinds = await credits(acme)
    assert held == 0 and kinds[0] == "capture"
    ledger = (await acme.get("/v1/credits/acme", params={"limit": 100})).json()["entries"]
    assert [e["kind"] for e in ledger if e["task_id"] == video["id"]] == ["capture", "hold"]
    await assert_ledger()


async def test_an_ambiguous_submit_never_fails_over(acme, admin, stack, routed, assert_ledger):
    prompt = "lost answer [sim:duration=50] [sim:submit=502]"
    video = await finished(acme, (await create(acme, prompt, model=routed))["id"])
    assert video["status"] == "failed"
    assert video["error"]["code"] == "upstream_submit_ambiguous"
    shown = (await admin.get(f"/v1/videos/{video['id']}")).json()
    assert shown["upstream_route"] == "simulator:veo3-fast"  # never left its first route
    tasks = [t for t in await sim_tasks(stack) if t["prompt"] == prompt]
    assert len(tasks) == 1 and "instances" not in tasks[0]["request"]  # the gateway's only
    await assert_ledger()


@pytest.fixture
async def resubmitting(admin: httpx.AsyncClient) -> AsyncIterator[None]:
    """The ambiguous-submit policy ``resubmit``; before `routed`, whose warm-up proves the
    worker read it."""
    policy = {"ambiguous_submit_policy": "resubmit"}
    assert (await admin.put("/v1/admin/config", json=policy)).status_code == 200
    yield
    back = {"ambiguous_submit_policy": "fail"}
    assert (await admin.put("/v1/admin/config", json=back)).status_code == 200


@pytest.mark.parametrize(
    ("refusal", "code"), [("429", "upstream_unavailable"), ("401", "upstream_auth")]
)
async def test_after_an_ambiguous_submit_a_resubmit_never_fails_over(
    acme, admin, stack, resubmitting, routed, assert_ledger, refusal, code
):
    prompt = (
        f"lost then {refusal} [sim:duration=50] [sim:submit=502] [sim:submit_times=1]"
        f" [sim:submit_then={refusal}] [sim:retry_after=0]"
    )
    video = await finished(acme, (await create(acme, prompt, model=routed))["id"])
    assert video["status"] == "failed" and video["error"]["code"] == code, video
    shown = (await admin.get(f"/v1/videos/{video['id']}")).json()
    assert shown["upstream_route"] == "simulator:veo3-fast"  # never left the route
    tasks = [t for t in await sim_tasks(stack) if t["prompt"] == prompt]
    assert len(tasks) == 1 and "instances" not in tasks[0]["request"]  # no Gemini task
    await assert_ledger()
