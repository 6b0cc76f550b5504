"""The Gemini client against answers shaped as Google's (beyond the shared corpus): the
request it sends, the error policy on ``error.status``, inline videos, the keyed download
and the connection check. The transport is an ``httpx.MockTransport`` standing in for
Google; the client, protocol and error policy are the real ones."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from schemas.catalogue import ImageRole
from schemas.problems import FailureCode
from worker.upstream import (
    AmbiguousSubmitError,
    InlineImage,
    OperatorProblemError,
    PermanentUpstreamError,
    RemoteImage,
    SubmitRequest,
    TaskNotFoundError,
    TransientUpstreamError,
    UpstreamError,
    UpstreamState,
)
from worker.upstream.gemini import GeminiClient
from worker.upstream.gemini.protocol import submit_payload

BASE = "https://generativelanguage.googleapis.com"
KEY = "AIza-test-key"
OPERATION = "models/veo-3.1-generate-preview/operations/op1"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff" + b"\x00" * 16
Handler = Callable[[httpx.Request], httpx.Response]


def google_error(code: int, status: str, message: str, reason: str | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason is not None:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    return json.dumps({"error": error}).encode()


def client(handler: Handler, base: str = BASE) -> GeminiClient:
    return GeminiClient(base, KEY, transport=httpx.MockTransport(handler))


def request(**extra: Any) -> SubmitRequest:
    return SubmitRequest("veo-3.1-generate-preview", "a fox", enhance_prompt=False, **extra)


# --- the request ------------------------------------------------------------------------


def test_roles_map_to_image_last_frame_and_asset_references_inline():
    payload = submit_payload(
        request(
            images=[
                InlineImage(ImageRole.FIRST_FRAME, "image/png", PNG),
                InlineImage(ImageRole.LAST_FRAME, "image/jpeg", JPEG),
            ]
        )
    )
    [instance] = payload["instances"]
    assert instance["image"] == {
        "bytesBase64Encoded": base64.b64encode(PNG).decode(),
        "mimeType": "image/png",
    }
    assert instance["lastFrame"]["mimeType"] == "image/jpeg"
    assert "referenceImages" not in instance

    refs = submit_payload(request(images=[InlineImage(ImageRole.REFERENCE, "image/png", PNG)] * 3))[
        "instances"
    ][0]
    assert [r["referenceType"] for r in refs["referenceImages"]] == ["ASSET"] * 3
    assert refs["referenceImages"][0]["image"]["bytesBase64Encoded"]
    assert "image" not in refs and "lastFrame" not in refs


def test_parameters_are_google_names_duration_a_number_and_nothing_the_api_refuses():
    payload = submit_payload(
        request(
            aspect_ratio="9:16",
            resolution="1080p",
            duration_seconds=8,
            negative_prompt="cartoon",
            person_generation="allow_adult",
            seed=42,
            enable_upsample=True,
            notify_hook="https://video.example/hook",
        )
    )
    assert payload["parameters"] == {
        "sampleCount": 1,
        "aspectRatio": "9:16",
        "resolution": "1080p",
        "durationSeconds": 8,
        "negativePrompt": "cartoon",
        "personGeneration": "allow_adult",
    }
    text = json.dumps(payload)
    for refused in ("seed", "fps", "generateAudio", "compressionQuality", "storageUri", "hook"):
        assert refused not in text, refused


def test_a_bare_text_request_sends_only_the_prompt_and_one_sample():
    assert submit_payload(request()) == {
        "instances": [{"prompt": "a fox"}],
        "parameters": {"sampleCount": 1},
    }


def test_an_image_url_is_never_sent_to_google():
    with pytest.raises(PermanentUpstreamError, match="bytes, not a URL"):
        submit_payload(request(images=[RemoteImage(ImageRole.FIRST_FRAME, "https://x/a.png")]))


@pytest.mark.parametrize("base", [BASE, BASE + "/", BASE + "/v1beta", BASE + "/v1beta/"])
async def test_the_version_path_is_added_once(base: str):
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={"name": OPERATION})

    async with client(handler, base) as gemini:
        result = await gemini.submit(request())
    assert result.task_id == OPERATION
    assert seen[0].url.path == "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"


# --- errors on error.status ---------------------------------------------------------------


P, OP, T = PermanentUpstreamError, OperatorProblemError, TransientUpstreamError


@pytest.mark.parametrize(
    ("http", "word", "message", "op", "expected", "detail"),
    [
        (400, "INVALID_ARGUMENT", "bad ratio", "submit", P, "INVALID_ARGUMENT"),
        (400, "FAILED_PRECONDITION", "no billing", "submit", P, "FAILED_PRECONDITION"),
        (400, "INVALID_ARGUMENT", "API key not valid. Please pass one.", "submit", OP, "auth"),
        (400, "INVALID_ARGUMENT", "API key expired. Please renew the API key.", "poll", OP, "auth"),
        (403, "PERMISSION_DENIED", "denied", "submit", OP, "auth"),
        (401, "UNAUTHENTICATED", "no credentials", "poll", OP, "auth"),
        (429, "RESOURCE_EXHAUSTED", "quota", "submit", T, "RESOURCE_EXHAUSTED"),
        (503, "UNAVAILABLE", "overloaded", "submit", T, "UNAVAILABLE"),
        (500, "INTERNAL", "oops", "submit", T, "INTERNAL"),
        (500, "INTERNAL", "oops", "poll", T, "INTERNAL"),
        (404, "NOT_FOUND", "no such operation", "poll", TaskNotFoundError, "NOT_FOUND"),
    ],
)  # fmt: skip
async def test_error_status_decides(http, word, message, op, expected, detail):
    error = await _raised(http, google_error(http, word, message), op)
    assert type(error) is expected
    assert detail == (error.cause if isinstance(error, OperatorProblemError) else error.code)


async def test_a_key_refused_by_its_error_info_reason_alone_is_the_operators():
    body = google_error(400, "INVALID_ARGUMENT", "Bad request.", reason="API_KEY_INVALID")
    error = await _raised(400, body, "submit")
    assert isinstance(error, OperatorProblemError) and error.cause == "auth"


async def test_a_proxy_page_on_a_submit_is_ambiguous_googles_own_5xx_is_not():
    page = b"<html><title>502 Bad Gateway</title></html>"
    assert isinstance(await _raised(502, page, "submit"), AmbiguousSubmitError)
    own = google_error(502, "UNAVAILABLE", "The service is currently unavailable.")
    assert isinstance(await _raised(502, own, "submit"), TransientUpstreamError)


async def _raised(http: int, body: bytes, op: str) -> Exception:
    async with client(lambda req: httpx.Response(http, content=body)) as gemini:
        try:
            await (gemini.submit(request()) if op == "submit" else gemini.poll(OPERATION))
        except UpstreamError as exc:
            return exc
    raise AssertionError("no error raised")


async def test_an_operation_name_that_cannot_be_polled_is_ambiguous_not_refused():
    async with client(lambda req: httpx.Response(200, json={"name": "../../etc"})) as gemini:
        with pytest.raises(AmbiguousSubmitError, match="cannot be stored or polled"):
            await gemini.submit(request())
        with pytest.raises(PermanentUpstreamError, match="not an operation name"):
            await gemini.poll("models/x/operations/../../y")


# --- operations ---------------------------------------------------------------------------


async def test_done_without_samples_or_filter_signs_is_a_success_still_waiting_for_a_video():
    answer = {"name": OPERATION, "done": True, "response": {"generateVideoResponse": {}}}
    async with client(lambda req: httpx.Response(200, json=answer)) as gemini:
        result = await gemini.poll(OPERATION)
    assert result.state is UpstreamState.SUCCEEDED and result.video_url is None
    assert result.failure() is None  # the poll job's short grace, then upstream_no_video


async def test_an_operation_error_with_a_status_word_keeps_it_as_the_code():
    answer = {
        "name": OPERATION,
        "done": True,
        "error": {"code": 3, "message": "Unsupported image.", "status": "INVALID_ARGUMENT"},
    }
    async with client(lambda req: httpx.Response(200, json=answer)) as gemini:
        result = await gemini.poll(OPERATION)
    assert result.fail_code == "INVALID_ARGUMENT"
    assert result.failure() is not None
    assert result.failure().code is FailureCode.UPSTREAM_FAILED  # type: ignore[union-attr]


async def test_an_inline_video_is_served_from_the_operation_and_never_kept_in_the_snapshot():
    mp4 = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
    encoded = base64.b64encode(mp4).decode()
    answer = {
        "name": OPERATION,
        "done": True,
        "response": {
            "generateVideoResponse": {
                "generatedSamples": [{"video": {"encodedVideo": encoded, "encoding": "video/mp4"}}]
            }
        },
    }
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json=answer)

    async with client(handler) as gemini:
        result = await gemini.poll(OPERATION)
        assert result.state is UpstreamState.SUCCEEDED and result.video_url
        assert "base64 characters, not kept" in json.dumps(result.raw)
        async with gemini.download(result.video_url) as stream:
            got = b"".join([chunk async for chunk in stream.chunks])
    assert got == mp4
    assert stream.content_length == len(mp4)
    assert [r.url.path for r in seen] == [f"/v1beta/{OPERATION}"] * 2
    assert all(r.headers["x-goog-api-key"] == KEY for r in seen)


# --- download and check ----------------------------------------------------------------------


async def test_download_sends_the_key_to_google_and_follows_the_redirect_without_it():
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        if req.url.host == "generativelanguage.googleapis.com":
            if req.headers.get("x-goog-api-key") != KEY:
                return httpx.Response(403, content=google_error(403, "PERMISSION_DENIED", "key"))
            return httpx.Response(302, headers={"Location": "https://storage.example/v.mp4"})
        return httpx.Response(200, content=b"video", headers={"Content-Type": "video/mp4"})

    url = f"{BASE}/v1beta/files/abc:download?alt=media"
    async with client(handler) as gemini, gemini.download(url) as stream:
        assert b"".join([chunk async for chunk in stream.chunks]) == b"video"
    assert [r.url.host for r in seen] == ["generativelanguage.googleapis.com", "storage.example"]
    assert "x-goog-api-key" not in seen[1].headers


async def test_a_refused_download_is_permanent_for_the_store_job_to_count():
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(403, content=google_error(403, "PERMISSION_DENIED", "expired"))

    async with client(handler) as gemini:
        with pytest.raises(PermanentUpstreamError, match="expired"):
            async with gemini.download(f"{BASE}/v1beta/files/a:download?alt=media"):
                pass


async def test_check_lists_one_model_and_creates_nothing():
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={"models": [{"name": "models/veo-2.0-generate-001"}]})

    async with client(handler) as gemini:
        await gemini.check()
    [req] = seen
    assert (req.method, req.url.path, req.url.params["pageSize"]) == ("GET", "/v1beta/models", "1")


async def test_check_reads_a_refused_key_as_the_operators_problem():
    body = google_error(400, "INVALID_ARGUMENT", "API key not valid.", "API_KEY_INVALID")
    async with client(lambda req: httpx.Response(400, content=body)) as gemini:
        with pytest.raises(OperatorProblemError) as raised:
            await gemini.check()
    assert raised.value.cause == "auth" and raised.value.status == 400
