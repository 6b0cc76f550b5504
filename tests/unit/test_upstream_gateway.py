import gzip
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from worker.upstream import (
    AmbiguousSubmitError,
    PermanentUpstreamError,
    SubmitRequest,
    TaskNotFoundError,
    TransientUpstreamError,
    UpstreamState,
)
from worker.upstream.gateway import GatewayClient

Handler = Callable[[httpx.Request], httpx.Response]

BASE = "https://gw.example"
KEY = "sk-secret-key-123"
TASK = "f0aa213c-c09e-4e19-a0e5-c698fe48acf1"
VIDEO = "https://cdn.example/20250618/abc.mp4"
SATURATED = "当前分组上游负载已饱和，请稍后再试"  # noqa: RUF001 -- verbatim gateway text
REQ = SubmitRequest(model="veo3", prompt="a cat surfing", enhance_prompt=True)


@pytest.fixture
async def gateway():
    clients = []

    def make(handler):
        client = GatewayClient(BASE + "/", KEY, transport=httpx.MockTransport(handler))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def answer(status: int, body: Any = None, **kwargs: Any) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, **kwargs)
        return httpx.Response(status, json=body, **kwargs)

    return handler


def raising(exc_type: type[httpx.RequestError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("boom", request=request)

    return handler


class Recorder:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response


# --- submit ---------------------------------------------------------------------------


async def test_submit_posts_payload_with_bearer_key_and_returns_string_task_id(gateway):
    recorder = Recorder(httpx.Response(200, json={"code": "success", "message": "", "data": TASK}))

    result = await gateway(recorder).submit(REQ)

    assert result.task_id == TASK
    [request] = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == "https://gw.example/google/v1/models/veo/videos"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "prompt": "a cat surfing",
        "model": "veo3",
        "enhance_prompt": True,
    }


async def test_submit_payload_omits_empty_images_and_zero_seed(gateway):
    recorder = Recorder(httpx.Response(200, json={"code": "success", "data": TASK}))
    req = SubmitRequest(model="veo3", prompt="p", enhance_prompt=False, images=[], seed=0)

    await gateway(recorder).submit(req)

    sent = json.loads(recorder.requests[0].content)
    assert "images" not in sent
    assert "seed" not in sent
    assert sent["enhance_prompt"] is False


async def test_submit_accepts_v2_top_level_task_id(gateway):
    result = await gateway(answer(200, {"task_id": TASK})).submit(REQ)

    assert result.task_id == TASK


async def test_submit_400_invalid_request_is_permanent_with_chinese_message(gateway):
    body = {"code": "invalid_request", "message": "提示词不能为空", "data": None}

    with pytest.raises(PermanentUpstreamError) as caught:
        await gateway(answer(400, body)).submit(REQ)

    assert type(caught.value) is PermanentUpstreamError
    assert caught.value.code == "invalid_request"
    assert caught.value.message == "提示词不能为空"
    assert caught.value.status == 400
    assert caught.value.body == body


async def test_submit_200_with_model_price_error_is_permanent(gateway):
    body = {"code": "model_price_error", "message": "模型价格未配置", "data": None}

    with pytest.raises(PermanentUpstreamError) as caught:
        await gateway(answer(200, body)).submit(REQ)

    assert caught.value.code == "model_price_error"
    assert caught.value.message == "模型价格未配置"


async def test_submit_429_with_retry_after_is_transient(gateway):
    body = {"code": "", "message": SATURATED, "data": None}
    handler = answer(429, body, headers={"Retry-After": "12"})

    with pytest.raises(TransientUpstreamError) as caught:
        await gateway(handler).submit(REQ)

    assert caught.value.retry_after == 12.0
    assert caught.value.message == SATURATED
    assert caught.value.status == 429


async def test_submit_500_do_request_failed_is_transient(gateway):
    body = {"code": "do_request_failed", "message": "upstream error", "data": None}

    with pytest.raises(TransientUpstreamError) as caught:
        await gateway(answer(500, body)).submit(REQ)

    assert caught.value.code == "do_request_failed"


async def test_submit_401_openai_style_body_is_permanent_unauthorized(gateway):
    body = {"error": {"message": "无效的令牌", "type": "new_api_error"}}

    with pytest.raises(PermanentUpstreamError) as caught:
        await gateway(answer(401, body)).submit(REQ)

    assert caught.value.code == "unauthorized"
    assert caught.value.message == "无效的令牌"


async def test_submit_read_timeout_is_ambiguous(gateway):
    with pytest.raises(AmbiguousSubmitError) as caught:
        await gateway(raising(httpx.ReadTimeout)).submit(REQ)

    assert caught.value.code == "submit_timeout"
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


async def test_submit_connection_dropped_after_sending_is_ambiguous(gateway):
    with pytest.raises(AmbiguousSubmitError) as caught:
        await gateway(raising(httpx.RemoteProtocolError)).submit(REQ)

    assert caught.value.code == "submit_connection_lost"


@pytest.mark.parametrize("exc_type", [httpx.ConnectError, httpx.ConnectTimeout])
async def test_submit_that_never_connected_is_transient(gateway, exc_type):
    with pytest.raises(TransientUpstreamError):
        await gateway(raising(exc_type)).submit(REQ)


async def test_submit_2xx_non_json_answer_is_ambiguous(gateway):
    with pytest.raises(AmbiguousSubmitError) as caught:
        await gateway(answer(200, "<html>ok</html>")).submit(REQ)

    assert caught.value.code == "malformed_submit_response"
    assert caught.value.body == "<html>ok</html>"


async def test_submit_success_without_task_id_is_ambiguous(gateway):
    with pytest.raises(AmbiguousSubmitError):
        await gateway(answer(200, {"code": "success", "data": None})).submit(REQ)


# --- poll -----------------------------------------------------------------------------


def task_answer(status: str = "SUCCESS", inner: Any = None, **task: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "task_id": TASK,
        "status": status,
        "progress": "100%",
        "submit_time": 1750221308,
    }
    data["data"] = {"video_url": VIDEO} if inner is None else inner
    data.update(task)
    return {"code": "success", "message": "", "data": data}


async def test_poll_gets_task_url_with_key_and_reads_nested_video_url(gateway):
    recorder = Recorder(httpx.Response(200, json=task_answer()))

    result = await gateway(recorder).poll(TASK)

    [request] = recorder.requests
    assert request.method == "GET"
    assert str(request.url) == f"https://gw.example/google/v1/tasks/{TASK}"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert result.state is UpstreamState.SUCCEEDED
    assert result.video_url == VIDEO
    assert result.progress == 100


async def test_poll_success_without_url_keeps_caller_polling(gateway):
    result = await gateway(answer(200, task_answer(inner={"status": "completed"}))).poll(TASK)

    assert result.state is UpstreamState.SUCCEEDED
    assert result.video_url is None


async def test_poll_unknown_status_is_unknown(gateway):
    result = await gateway(answer(200, task_answer(status="UNKNOWN", inner={}))).poll(TASK)

    assert result.state is UpstreamState.UNKNOWN
    assert result.raw_status == "UNKNOWN"


async def test_poll_in_progress_reads_percent_progress(gateway):
    body = task_answer(status="IN_PROGRESS", inner={}, progress="42%")

    result = await gateway(answer(200, body)).poll(TASK)

    assert (result.state, result.progress) == (UpstreamState.RUNNING, 42)


async def test_poll_400_task_not_exist_is_task_not_found(gateway):
    body = {"code": "task_not_exist", "message": "task_not_exist", "data": None}

    with pytest.raises(TaskNotFoundError) as caught:
        await gateway(answer(400, body)).poll(TASK)

    assert caught.value.status == 400


async def test_poll_500_get_task_failed_is_transient(gateway):
    body = {"code": "get_task_failed", "message": "record not found?", "data": None}

    with pytest.raises(TransientUpstreamError) as caught:
        await gateway(answer(500, body)).poll(TASK)

    assert caught.value.code == "get_task_failed"


async def test_poll_non_json_502_is_transient(gateway):
    with pytest.raises(TransientUpstreamError) as caught:
        await gateway(answer(502, "<html>502 Bad Gateway</html>")).poll(TASK)

    assert caught.value.status == 502
    assert caught.value.message == "HTTP 502 Bad Gateway"


async def test_poll_read_timeout_is_transient_not_ambiguous(gateway):
    with pytest.raises(TransientUpstreamError) as caught:
        await gateway(raising(httpx.ReadTimeout)).poll(TASK)

    assert caught.value.code == "timeout"


async def test_poll_200_with_unknown_error_code_is_transient(gateway):
    body = {"code": "fail_to_fetch_task", "message": "获取任务失败", "data": None}

    with pytest.raises(TransientUpstreamError):
        await gateway(answer(200, body)).poll(TASK)


async def test_poll_escapes_task_id_in_path(gateway):
    recorder = Recorder(httpx.Response(200, json=task_answer()))

    await gateway(recorder).poll("veo3:a/b")

    assert recorder.requests[0].url.raw_path == b"/google/v1/tasks/veo3%3Aa%2Fb"


async def test_poll_empty_task_id_is_permanent_without_a_request(gateway):
    recorder = Recorder(httpx.Response(200, json=task_answer()))

    with pytest.raises(PermanentUpstreamError):
        await gateway(recorder).poll("  ")

    assert recorder.requests == []


# --- check ----------------------------------------------------------------------------


async def test_check_accepts_task_not_exist_as_proof_the_key_works(gateway):
    body = {"code": "task_not_exist", "message": "task_not_exist", "data": None}
    recorder = Recorder(httpx.Response(400, json=body))

    await gateway(recorder).check()

    [request] = recorder.requests
    assert request.method == "GET"
    assert request.url.path.startswith("/google/v1/tasks/")
    assert request.headers["Authorization"] == f"Bearer {KEY}"


async def test_check_queries_a_fresh_id_each_time(gateway):
    body = {"code": "task_not_exist", "message": "task_not_exist", "data": None}
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path.rsplit("/", 1)[1])
        return httpx.Response(400, json=body)

    client = gateway(handler)
    await client.check()
    await client.check()

    first, second = paths
    assert first.startswith("gv-config-test-") and first != second


async def test_check_reads_a_task_for_an_impossible_id_as_unexpected(gateway):
    # A task for an id nobody made is no proof of anything (a mock, a caching proxy).
    with pytest.raises(PermanentUpstreamError) as caught:
        await gateway(answer(200, task_answer())).check()

    assert caught.value.code == "unexpected_answer" and caught.value.status == 200


@pytest.mark.parametrize("status", [401, 403])
async def test_check_with_rejected_key_is_permanent_unauthorized(gateway, status):
    body = {"error": {"message": "无效的令牌", "type": "new_api_error"}}

    with pytest.raises(PermanentUpstreamError) as caught:
        await gateway(answer(status, body)).check()

    assert caught.value.code == "unauthorized"


async def test_check_against_a_wrong_base_url_fails(gateway):
    with pytest.raises(PermanentUpstreamError) as caught:
        await gateway(answer(404, "<html>Not Found</html>")).check()

    assert type(caught.value) is PermanentUpstreamError


# --- download -------------------------------------------------------------------------


async def test_download_streams_the_body_as_it_arrives_without_credentials(gateway):
    payload = b"\x00\x01" * (1024 * 1024 + 10)
    recorder = Recorder(httpx.Response(200, content=payload, headers={"Content-Type": "video/mp4"}))

    async with gateway(recorder).download(VIDEO) as stream:
        chunks = [chunk async for chunk in stream.chunks]

    assert b"".join(chunks) == payload  # not regrouped: the storage makes its own blocks
    assert stream.content_type == "video/mp4"
    assert stream.content_length == len(payload)
    assert "Authorization" not in recorder.requests[0].headers


async def test_download_decodes_an_encoded_body(gateway):
    payload = b"\x00\x00\x00\x18ftypmp42" * 1000
    headers = {"Content-Type": "video/mp4", "Content-Encoding": "gzip"}
    recorder = Recorder(httpx.Response(200, content=gzip.compress(payload), headers=headers))

    async with gateway(recorder).download(VIDEO) as stream:
        assert b"".join([chunk async for chunk in stream.chunks]) == payload


async def test_download_follows_cdn_redirects(gateway):
    def handler(request):
        if request.url.host == "cdn.example":
            return httpx.Response(302, headers={"Location": "https://edge.example/v.mp4"})
        return httpx.Response(200, content=b"video")

    async with gateway(handler).download(VIDEO) as stream:
        assert b"".join([chunk async for chunk in stream.chunks]) == b"video"


async def test_download_404_is_permanent_not_found(gateway):
    with pytest.raises(PermanentUpstreamError) as caught:
        async with gateway(answer(404, "Not Found")).download(VIDEO):
            pytest.fail("must not yield")

    assert caught.value.code == "download_not_found"
    assert caught.value.status == 404


async def test_download_503_is_transient(gateway):
    with pytest.raises(TransientUpstreamError) as caught:
        async with gateway(answer(503, "busy", headers={"Retry-After": "5"})).download(VIDEO):
            pytest.fail("must not yield")

    assert caught.value.status == 503
    assert caught.value.retry_after == 5.0


async def test_download_network_error_is_transient(gateway):
    with pytest.raises(TransientUpstreamError):
        async with gateway(raising(httpx.ConnectError)).download(VIDEO):
            pytest.fail("must not yield")


class _BrokenStream(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"first"
        raise httpx.ReadError("connection reset")


async def test_download_interrupted_mid_stream_is_transient(gateway):
    handler = answer(200, stream=_BrokenStream())

    with pytest.raises(TransientUpstreamError) as caught:
        async with gateway(handler).download(VIDEO) as stream:
            async for _ in stream.chunks:
                pass
    assert caught.value.code == "network_error"


async def test_download_without_content_length_reports_none(gateway):
    async with gateway(answer(200, stream=_OneChunk())).download(VIDEO) as stream:
        assert stream.content_length is None
        assert stream.content_type == "application/octet-stream"


class _OneChunk(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"x"


# --- hygiene --------------------------------------------------------------------------


def test_repr_hides_the_key():
    client = GatewayClient(BASE, KEY)

    assert KEY not in repr(client)
    assert BASE in repr(client)


async def test_logs_never_contain_the_key(gateway):
    with capture_logs() as logs:
        client = gateway(answer(200, {"code": "success", "data": TASK}))
        await client.submit(REQ)
        with pytest.raises(TransientUpstreamError):
            await gateway(raising(httpx.ConnectError)).poll(TASK)

    assert logs
    assert KEY not in repr(logs)


async def test_client_is_an_async_context_manager():
    async with GatewayClient(BASE, KEY, transport=httpx.MockTransport(answer(200, {}))) as client:
        assert isinstance(client, GatewayClient)


def test_empty_base_url_is_rejected():
    with pytest.raises(ValueError, match="base_url"):
        GatewayClient("", KEY)
