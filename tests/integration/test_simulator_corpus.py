"""Every real gateway body of ``../shared/upstream-corpus/gateway/`` the simulator can send.

For each corpus file the simulator reproduces, the directive that produces it is driven
over HTTP and the answer must have the file's shape: the same status code, the same
content type, and for JSON the same keys, nesting and kinds of value (the values are the
simulator's own: ids, times, URLs); an HTML page is the same page, an empty body empty.
"""

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.app import create_app
from simulator.video import render_mp4

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "upstream-corpus" / "gateway"
KEY = "corpus-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SUBMIT = "/google/v1/models/veo/videos"
T0 = 1_750_221_308.0


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


Case = Callable[[httpx.AsyncClient, FakeClock], Awaitable[httpx.Response]]


def submitting(directives: str) -> Case:
    async def case(client: httpx.AsyncClient, clock: FakeClock) -> httpx.Response:
        body = {"prompt": f"a fox {directives}", "model": "veo3", "enhance_prompt": True}
        return await client.post(SUBMIT, json=body, headers=AUTH)

    return case


def polling(directives: str, at: float = 0.0, queries: int = 1) -> Case:
    """Submit a 100 s task with ``directives``, move the clock to ``at`` seconds after the
    submit, and answer with the last of ``queries`` queries."""

    async def case(client: httpx.AsyncClient, clock: FakeClock) -> httpx.Response:
        body = {"prompt": f"a fox [sim:duration=100] {directives}", "model": "veo3"}
        submitted = await client.post(SUBMIT, json=body, headers=AUTH)
        assert submitted.status_code == 200, submitted.text
        task_id = submitted.json()["data"]
        clock.now = T0 + at
        for _ in range(queries - 1):
            await client.get(f"/google/v1/tasks/{task_id}", headers=AUTH)
        return await client.get(f"/google/v1/tasks/{task_id}", headers=AUTH)

    return case


CASES: dict[str, Case] = {
    "s01_submit_success_doc.json": submitting(""),
    "s02_submit_v2_task_id.json": submitting("[sim:submit_shape=task_id]"),
    "s03_submit_yunwu_video_create.json": submitting("[sim:submit_shape=id]"),
    "s04_submit_newapi_gemini_openai_video.json": submitting("[sim:submit_shape=openai]"),
    "s05_submit_400_invalid_request.json": submitting("[sim:submit=400]"),
    "s06_submit_403_quota_not_enough.json": submitting("[sim:submit=403]"),
    "s07_submit_429_chained_upstream.json": submitting("[sim:submit=429_busy]"),
    "s08_submit_429_empty_global_ratelimit.txt": submitting("[sim:submit=429_empty]"),
    "s09_submit_429_model_ratelimit.json": submitting("[sim:submit=429_limit]"),
    "s10_submit_401_invalid_token.json": submitting("[sim:submit=401]"),
    "s11_submit_503_no_channel.json": submitting("[sim:submit=503]"),
    "s12_submit_500_do_request_failed.json": submitting("[sim:submit=500]"),
    "s13_submit_504_nginx_html.html": submitting("[sim:submit=504]"),
    "s15_submit_502_empty.txt": submitting("[sim:submit=502_empty]"),
    "p01_success_doc.json": polling("", at=100),
    "p02_not_start.json": polling("[sim:sparse]"),
    "p03_queued.json": polling("[sim:sparse][sim:queued_word=QUEUED]", at=5),
    "p04_in_progress.json": polling("[sim:sparse]", at=50),
    "p05_failure_rai.json": polling("[sim:sparse][sim:fail=Veo could not generate]", at=100),
    "p06_unknown.json": polling("[sim:sparse][sim:queued_word=UNKNOWN]", at=5),
    "p07_success_no_url_rai.json": polling("[sim:safety]", at=100),
    "p08_success_url_in_fail_reason.json": polling("[sim:url_at=fail_reason]", at=100),
    "p09_success_result_url.json": polling("[sim:url_at=result_url]", at=100),
    "p15_openai_video_failed.json": polling("[sim:openai_failure]", at=100),
    "p16_task_not_exist_400.json": polling("[sim:task_not_exist=1]"),
    "p17_get_task_failed_500.json": polling("[sim:poll500=1]"),
    "p18_429_empty.txt": polling("[sim:poll429_empty=1]"),
    "p19_401_token_exhausted.json": polling("[sim:poll401_after=1]", queries=2),
    "p20_502_nginx_html.html": polling("[sim:poll502=1]"),
    "p21_502_empty.txt": polling("[sim:poll502_empty=1]"),
    "p22_success_null_data.json": polling("[sim:null_data=1]"),
}
NOT_PRODUCED = {
    # Answers of other routes of the same gateway family (/v2/videos/generations,
    # /v1/video/query): the simulator serves the "google" route only.
    "p11_v2_flat_success.json",
    "p13_video_query_success_lower.json",
}


def manifest() -> list[dict[str, Any]]:
    path = CORPUS / "manifest.json"
    assert path.is_file(), f"the gateway corpus is missing: {path}"
    entries: list[dict[str, Any]] = json.loads(path.read_text())
    return entries


def shape(value: object) -> object:
    """Keys and nesting with the kind of every leaf; a list by the shape of its first item."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, FakeClock]]:
    clock = FakeClock()
    video = render_mp4(seconds=0.25, width=64, height=36)
    app = create_app(KEY, clock=clock, rng_seed=1, video=video, submit_timeout_delay=0.1)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as http:
        yield http, clock


def test_every_corpus_file_is_reproduced_or_named_as_not_produced():
    files = {entry["file"] for entry in manifest()}
    assert files == set(CASES) | NOT_PRODUCED


@pytest.mark.parametrize(
    "entry",
    [entry for entry in manifest() if entry["file"] not in NOT_PRODUCED],
    ids=lambda entry: entry["file"],
)
async def test_the_simulator_sends_the_corpus_shape(client, entry):
    http, clock = client
    response = await CASES[entry["file"]](http, clock)
    expected = (CORPUS / entry["file"]).read_text(encoding="utf-8")
    assert response.status_code == entry["http_status"]
    assert "retry-after" not in response.headers  # the corpus answers carry none
    content_type = response.headers.get("content-type", "")
    if entry["file"].endswith(".json"):
        assert content_type.startswith("application/json")
        assert shape(response.json()) == shape(json.loads(expected))
    elif entry["file"].endswith(".html"):
        assert content_type.startswith("text/html")
        assert response.text.strip() == expected.strip()
    else:
        assert expected.strip() == ""
        assert response.content == b""
        assert content_type == ""
