"""The kinds of gateway answers behind the breaker's findings, several bodies each, read
through the real `GatewayClient` over an `httpx.MockTransport` (docs/upstreams.md)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from schemas.tables import VideoTask
from worker.upstream.base import SubmitRequest, UpstreamState
from worker.upstream.errors import (
    AmbiguousSubmitError,
    OperatorProblemError,
    PermanentUpstreamError,
    TaskNotFoundError,
    TransientUpstreamError,
)
from worker.upstream.gateway.client import GatewayClient
from worker.upstream.gateway.protocol import MAX_TASK_ID_CHARS, map_status
from worker.upstream.outcomes import parse_body

VIDEO = "https://cdn.example/v/abc.mp4"


def envelope(task: dict[str, Any]) -> dict[str, Any]:
    return {"code": "success", "message": "", "data": task}


def gateway(status: int, body: object) -> GatewayClient:
    if isinstance(body, dict):
        content = json.dumps(body, ensure_ascii=False).encode()
    elif isinstance(body, str):
        content = body.encode()
    else:
        content = body if isinstance(body, bytes) else b""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content)

    return GatewayClient("http://gateway.test", "key", transport=httpx.MockTransport(answer))


async def poll(status: int, body: object) -> Any:
    async with gateway(status, body) as client:
        return await client.poll("T1")


async def submit(status: int, body: object) -> Any:
    async with gateway(status, body) as client:
        return await client.submit(SubmitRequest(model="veo3", prompt="p", enhance_prompt=False))


# 1. The envelope's status is the request's; the task's is in `data`.
@pytest.mark.parametrize(
    ("body", "state"),
    [
        ({"code": 200, "status": "success", "msg": "", "data": {"status": "IN_PROGRESS"}},
         "running"),
        ({"status": "ok", "data": {"status": "QUEUED", "progress": "0%"}}, "pending"),
        ({"code": 0, "status": "SUCCESS", "data": {"status": "FAILURE", "fail_reason": "x"}},
         "failed"),
        ({"status": "success", "data": {"status": "processing", "progress": "40%"}}, "running"),
    ],
)  # fmt: skip
async def test_the_task_status_is_the_one_in_data(body, state):
    result = await poll(200, body)
    assert result.state == UpstreamState(state)
    assert result.video_url is None


# 2. Candidates are ranked; docs pages and echoed inputs never win.
@pytest.mark.parametrize(
    "task",
    [
        {"status": "SUCCESS", "fail_reason": "https://docs.example.com/notice/123",
         "data": {"videos": [{"url": "https://cdn.example/v/real"}]}},
        {"status": "SUCCESS", "fail_reason": "https://cdn.example/some/page",
         "data": {"video": {"uri": "https://cdn.example/v/real"}}},
        {"status": "SUCCESS", "result_url": "https://in.example/photo",
         "images": ["https://in.example/photo"], "data": {"output": "https://cdn.example/v/real"}},
        {"status": "SUCCESS", "result_url": "https://help.example.com/why",
         "data": {"files": [{"href": "https://cdn.example/v/real"}]}},
        {"status": "SUCCESS", "fail_reason": "see https://cdn.example/faq/video",
         "data": {"result": "https://cdn.example/v/real"}},
    ],
)  # fmt: skip
async def test_the_real_video_beats_a_non_video_url_in_a_known_place(task):
    result = await poll(200, envelope(task))
    assert result.video_url == "https://cdn.example/v/real"


async def test_every_candidate_is_kept_best_first():
    task = {
        "status": "SUCCESS",
        "fail_reason": "https://cdn.example/other",
        "data": {"video_url": "https://cdn.example/v/a", "backup": VIDEO},
    }
    result = await poll(200, envelope(task))
    assert result.video_urls == (VIDEO, "https://cdn.example/v/a", "https://cdn.example/other")


# 3. No 3xx/4xx on a poll ends the task, but the gateway's own "no such task".
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, "<html>404 Not Found</html>"),
        (405, ""),
        (413, "<html>Request Entity Too Large</html>"),
        (418, {"error": "teapot"}),
        (301, ""),
        (400, {"code": "invalid_request", "message": "bad id", "data": None}),
        (422, {"detail": "validation"}),
    ],
)
async def test_no_proxy_page_on_a_poll_fails_the_task(status, body):
    with pytest.raises(OperatorProblemError) as raised:
        await poll(status, body)
    assert raised.value.cause == "endpoint"


@pytest.mark.parametrize("status", [408, 425, 429])
async def test_a_poll_asked_to_wait_is_transient(status):
    with pytest.raises(TransientUpstreamError):
        await poll(status, "")


# 4. task_not_exist in other forms.
@pytest.mark.parametrize(
    "body",
    [
        {"code": "TASK_NOT_EXIST", "message": "task not exist", "data": None},
        {"code": "Task_Not_Exist", "message": "", "data": None},
        {"error": {"message": "task_not_exist", "type": "new_api_error"}},
        {"code": "error", "message": "任务不存在", "data": None},
        {"error": {"message": "Task not found: T1", "type": "invalid_request_error"}},
        {"code": 404, "message": "The task does not exist"},
    ],
)
async def test_task_not_exist_in_other_forms(body):
    with pytest.raises(TaskNotFoundError):
        await poll(400, body)


async def test_task_not_found_words_on_200_get_the_grace_too():
    with pytest.raises(TaskNotFoundError):
        await poll(200, {"code": "fail", "message": "task not found", "data": None})


# 5. Status words by family.
@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("成功", "succeeded"), ("生成成功", "succeeded"), ("已完成", "succeeded"),
        ("失败", "failed"), ("生成失败", "failed"), ("已取消", "failed"),
        ("排队中", "pending"), ("等待中", "pending"), ("未开始", "pending"),
        ("处理中", "running"), ("生成中", "running"), ("未完成", "unknown"),
        ("SUCCEEDED_WITH_WARNINGS", "succeeded"), ("SucceededWithWarnings", "succeeded"),
        ("FAILURE_RAI", "failed"), ("cancelled_by_user", "failed"),
        ("content_filtered", "failed"), ("moderated", "failed"), ("InProgress", "running"),
        ("failed_retrying", "unknown"), ("not_ready", "unknown"), ("2", "unknown"),
    ],
)  # fmt: skip
def test_status_words_by_family(word, state):
    assert map_status(word) == UpstreamState(state)


@pytest.mark.parametrize(
    "task",
    [
        {"status": 2, "data": {"video_url": VIDEO}},
        {"status": "WEIRD", "videos": [{"url": "https://cdn.example/v/x"}]},
        {"status": "Z", "data": {"video": "https://cdn.example/v/x.mp4"}},
    ],
)
async def test_an_unknown_status_with_a_video_keyed_url_is_finished(task):
    result = await poll(200, envelope(task))
    assert result.state == UpstreamState.SUCCEEDED
    assert result.video_url


@pytest.mark.parametrize(
    "task",
    [
        {"status": "WEIRD", "data": {"link": "https://cdn.example/x"}},
        {"status": 7, "fail_reason": "https://cdn.example/v/x.mp4"},
        {"status": "WEIRD"},
    ],
)
async def test_an_unknown_status_without_a_video_keyed_url_keeps_polling(task):
    result = await poll(200, envelope(task))
    assert result.state == UpstreamState.UNKNOWN
    assert result.video_url is None


# 6. Deep JSON is bounded at the parse boundary.
@pytest.mark.parametrize("depth", [200, 5000, 100_000])
async def test_deep_json_is_a_typed_error(depth):
    raw = ('{"code":"success","data":' + '{"a":' * depth + "1" + "}" * depth + "}").encode()
    with pytest.raises(TransientUpstreamError):
        await poll(200, raw)
    with pytest.raises(AmbiguousSubmitError):
        await submit(200, raw)


def test_nul_characters_never_reach_the_database():
    body = parse_body(b'{"code":"x\\u0000","data":{"k\\u0000":["a\\u0000b"]}}')
    assert body == {"code": "x", "data": {"k": ["ab"]}}
    assert parse_body(b"bad\x00gateway") == "badgateway"
    # UTF-16 JSON (which json.loads reads too) spells the escape with zero bytes between.
    utf16 = '{"code":"x\\u0000","data":{"k":"a\\u0000b"}}'.encode("utf-16")
    assert parse_body(utf16) == {"code": "x", "data": {"k": "ab"}}
    clean = b'{"code":"success","data":{"k":["a\\\\u0000"]}}'  # an escaped backslash
    assert parse_body(clean) == {"code": "success", "data": {"k": ["a\\u0000"]}}


# 7. The URL search: large, deep, encoded, protocol-relative, in text, *_video keys.
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"logs": [f"step {i}" for i in range(3000)], "result": "https://cdn.example/v/r"},
         "https://cdn.example/v/r"),
        ({"r": json.loads('{"n":' * 40 + f'"{VIDEO}"' + "}" * 40)}, VIDEO),
        ({"result": "https%3A%2F%2Fcdn.example%2Fv%2Fr.mp4"}, "https://cdn.example/v/r.mp4"),
        ({"result": "//cdn.example/v/r.mp4"}, "https://cdn.example/v/r.mp4"),
        ({"first_frame_image": "https://cdn.example/i/1",
          "frame_interpolated_video": "https://cdn.example/v/fi"}, "https://cdn.example/v/fi"),
        ({"message": "视频地址: https://cdn.example/v/abc"}, "https://cdn.example/v/abc"),
    ],
)  # fmt: skip
async def test_the_url_search_finds_the_video(data, expected):
    result = await poll(200, envelope({"status": "SUCCESS", "data": data}))
    assert result.video_url == expected


@pytest.mark.parametrize(
    "data",
    [
        {"first_frame_image": "https://cdn.example/i/1"},
        {"last_frame": {"url": "https://cdn.example/i/2"}},
        {"thumbnail": "https://cdn.example/t/3"},
        {"input_reference": "https://cdn.example/r/4"},
    ],
)
async def test_inputs_and_pictures_are_never_the_video(data):
    result = await poll(200, envelope({"status": "SUCCESS", "data": data}))
    assert result.video_url is None


# 8. Task ids: stored whatever their length up to the column; absurd ones ambiguous.
def test_the_id_bound_is_the_column():
    assert VideoTask.model_fields["upstream_task_id"].metadata[0].max_length == MAX_TASK_ID_CHARS


@pytest.mark.parametrize("task_id", ["L" * 300, "L" * MAX_TASK_ID_CHARS])
async def test_a_long_id_is_kept(task_id):
    assert (await submit(200, {"code": "success", "data": task_id})).task_id == task_id


@pytest.mark.parametrize("task_id", ["L" * (MAX_TASK_ID_CHARS + 1), "a\x01b", "a\x7fb"])
async def test_an_unusable_id_is_ambiguous(task_id):
    with pytest.raises(AmbiguousSubmitError, match="cannot be stored"):
        await submit(200, {"code": "success", "data": task_id})


# 9. Who answered a 502: only the gateway's own shapes prove it.
@pytest.mark.parametrize(
    "body",
    [
        {"error": "bad gateway"},
        {"error": {"message": "upstream connect error"}},
        {"error": {"message": "no healthy upstream", "type": "envoy"}},
        {"message": "An invalid response was received from the upstream server"},
        {"detail": "Bad Gateway"},
    ],
)
@pytest.mark.parametrize("status", [502, 504, 520, 524])
async def test_a_proxy_json_on_a_forwarded_status_is_ambiguous(status, body):
    with pytest.raises(AmbiguousSubmitError):
        await submit(status, body)


@pytest.mark.parametrize(
    "body",
    [
        {"code": "do_request_failed", "message": "请求上游地址失败", "data": None},
        {"error": {"message": "bad response", "type": "new_api_error"}},
        {"error": {"message": "x", "type": "upstream_error", "code": "bad_response"}},
    ],
)
async def test_the_gateways_own_502_is_retried(body):
    with pytest.raises(TransientUpstreamError):
        await submit(502, body)


# 10. Credit wording is the operator's quota.
@pytest.mark.parametrize(
    "message",
    [
        "Insufficient credits",
        "Your account has run out of credits",
        "insufficient balance",
        "余额不足",
        "Please top up your account",
    ],
)
@pytest.mark.parametrize("status", [401, 403])
async def test_credit_wording_is_quota(status, message):
    with pytest.raises(OperatorProblemError) as raised:
        await submit(status, {"error": {"message": message, "type": "new_api_error"}})
    assert raised.value.cause == "quota"


@pytest.mark.parametrize("message", ["invalid token", "Invalid credentials", "无效的令牌"])
async def test_a_bad_key_stays_auth(message):
    with pytest.raises(OperatorProblemError) as raised:
        await submit(401, {"error": {"message": message, "type": "new_api_error"}})
    assert raised.value.cause == "auth"


# 11. Success markers and id places on submit.
@pytest.mark.parametrize(
    "body",
    [
        {"code": "ok", "data": "T9"},
        {"code": "OK", "data": {"taskId": "T9"}},
        {"code": 1, "data": {"task_id": "T9"}},
        {"code": True, "data": {"id": "T9"}},
        {"code": 0, "msg": "", "data": {"task": {"id": "T9"}}},
        {"code": 200, "message": "提交成功", "data": {"taskID": "T9"}},
        {"success": True, "data": {"task_id": "T9"}},
    ],
)
async def test_success_markers_and_id_places_read_as_created(body):
    assert (await submit(200, body)).task_id == "T9"


@pytest.mark.parametrize(
    "body",
    [
        {"code": "accepted_later", "data": {"task_id": "T9"}},
        {"code": 2, "data": "T9"},
    ],
)
async def test_an_unknown_code_with_an_id_is_ambiguous_never_refused(body):
    with pytest.raises(AmbiguousSubmitError):
        await submit(200, body)


async def test_an_error_code_without_an_id_is_refused():
    with pytest.raises(PermanentUpstreamError):
        await submit(200, {"code": "invalid_request", "message": "bad", "data": None})


# 12. Safety signs outside the known places.
@pytest.mark.parametrize(
    "task",
    [
        {"status": "SUCCESS", "fail_reason": "blocked by safety filters"},
        {"status": "SUCCESS", "data": {"error": {"code": "PUBLIC_ERROR_UNSAFE_GENERATION"}}},
        {"status": "SUCCESS", "fail_reason": "内容违规 生成被拦截"},
        {"status": "SUCCESS", "fail_reason": "The prompt violates our content policy"},
        {"status": "SUCCESS", "error": {"message": "x", "code": "moderation_blocked"}},
    ],
)
async def test_safety_signs_outside_the_known_places(task):
    result = await poll(200, envelope(task))
    failure = result.failure()
    assert failure is not None and failure.code == "safety_filtered"


@pytest.mark.parametrize("reason", ["quota of GPU", "内容审核未通过", "violates content policy"])
async def test_a_failures_text_stays_upstream_failed(reason):
    result = await poll(200, envelope({"status": "FAILURE", "fail_reason": reason}))
    assert result.failure().code == "upstream_failed"
