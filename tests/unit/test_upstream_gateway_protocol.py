from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.catalogue import ImageRole
from schemas.problems import FailureCode
from worker.upstream.base import Failure, InlineImage, RemoteImage, SubmitRequest, UpstreamState
from worker.upstream.errors import (
    AmbiguousSubmitError,
    PermanentUpstreamError,
    TaskNotFoundError,
    TransientUpstreamError,
)
from worker.upstream.gateway.protocol import (
    map_status,
    parse_poll_answer,
    parse_progress,
    parse_submit_answer,
    parse_time,
    submit_payload,
)

TASK = "f0aa213c-c09e-4e19-a0e5-c698fe48acf1"
VIDEO = "https://cdn.example/20250618/abc.mp4"


def documented_answer(**task_overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "task_id": TASK,
        "notify_hook": "",
        "action": "google-videos",
        "status": "SUCCESS",
        "fail_reason": "",
        "submit_time": 1750221308,
        "start_time": 0,
        "finish_time": 1750221572,
        "progress": "100%",
        "data": {
            "id": TASK,
            "status": "completed",
            "video_url": VIDEO,
            "status_update_time": 1750221453056,
        },
    }
    task.update(task_overrides)
    return {"code": "success", "message": "", "data": task}


# --- submit payload -------------------------------------------------------------------


def test_payload_always_sends_enhance_prompt_and_omits_unset_options():
    req = SubmitRequest(model="veo3", prompt="a cat", enhance_prompt=False, seed=0)

    assert submit_payload(req) == {"prompt": "a cat", "model": "veo3", "enhance_prompt": False}


def test_payload_sends_every_option_that_is_set():
    req = SubmitRequest(
        model="veo3-fast",
        prompt="一只猫",
        enhance_prompt=True,
        images=[RemoteImage(ImageRole.FIRST_FRAME, "https://img.example/a.png")],
        aspect_ratio="9:16",
        enable_upsample=False,
        seed=42,
        notify_hook="https://hooks.example/t",
    )

    assert submit_payload(req) == {
        "prompt": "一只猫",
        "model": "veo3-fast",
        "enhance_prompt": True,
        "images": ["https://img.example/a.png"],
        "aspect_ratio": "9:16",
        "enable_upsample": False,
        "seed": 42,
        "notify_hook": "https://hooks.example/t",
    }


def test_payload_omits_negative_seed():
    req = SubmitRequest(model="veo3", prompt="p", enhance_prompt=True, seed=-1)

    assert "seed" not in submit_payload(req)


# --- submit answer --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"code": "success", "message": "", "data": TASK},
        {"code": "success", "data": {"task_id": TASK}},
        {"code": "success", "data": {"id": TASK}},
        {"task_id": TASK},
        {"id": TASK, "status": "pending"},
        {"code": 0, "data": TASK},
    ],
    ids=["documented-string", "data-task_id", "data-id", "v2-top-level", "flat-id", "code-0"],
)
def test_submit_answer_variants_all_yield_the_task_id(body):
    result = parse_submit_answer(200, body)

    assert result.task_id == TASK
    assert result.raw == body


@pytest.mark.parametrize(
    "body",
    [{"code": "success", "data": ""}, {"code": "success", "data": None}, {}, "not json", None],
)
def test_submit_answer_without_task_id_is_ambiguous(body):
    with pytest.raises(AmbiguousSubmitError) as caught:
        parse_submit_answer(200, body)

    assert caught.value.code == "malformed_submit_response"


def test_submit_answer_with_error_code_is_permanent_with_verbatim_message():
    body = {"code": "model_price_error", "message": "模型 veo9 价格未配置", "data": None}

    with pytest.raises(PermanentUpstreamError) as caught:
        parse_submit_answer(200, body)

    assert caught.value.code == "model_price_error"
    assert caught.value.message == "模型 veo9 价格未配置"
    assert caught.value.status == 200


def test_submit_answer_with_openai_style_error_is_permanent():
    body = {"error": {"message": "model not found", "type": "invalid_request_error"}}

    with pytest.raises(PermanentUpstreamError) as caught:
        parse_submit_answer(200, body)

    assert caught.value.message == "model not found"


# --- poll answer ----------------------------------------------------------------------


def test_documented_answer_is_read_completely():
    result = parse_poll_answer(200, documented_answer())

    assert result.state is UpstreamState.SUCCEEDED
    assert result.raw_status == "SUCCESS"
    assert result.video_url == VIDEO
    assert result.progress == 100
    assert result.fail_reason is None
    assert result.submit_time == datetime(2025, 6, 18, 4, 35, 8, tzinfo=UTC)
    assert result.start_time is None
    assert result.finish_time == datetime.fromtimestamp(1750221572, UTC)
    assert result.raw == documented_answer()


def test_success_without_url_is_succeeded_without_video_url():
    result = parse_poll_answer(200, documented_answer(data={"status": "completed"}))

    assert result.state is UpstreamState.SUCCEEDED
    assert result.video_url is None


@pytest.mark.parametrize(
    "task",
    [
        {"status": "SUCCESS", "video_url": VIDEO},
        {"status": "SUCCESS", "data": {"output": VIDEO}},
        {"status": "SUCCESS", "data": {"outputs": [VIDEO, "https://cdn.example/2.mp4"]}},
        {"status": "SUCCESS", "data": {"outputs": [{"url": VIDEO}]}},
        {"status": "SUCCESS", "data": {"video_url": "", "output": VIDEO}},
    ],
    ids=["data.video_url", "data.data.output", "data.data.outputs[0]", "outputs-dict", "empty"],
)
def test_video_url_fallbacks(task):
    result = parse_poll_answer(200, {"code": "success", "data": task})

    assert result.video_url == VIDEO


def test_nested_video_url_wins_over_fallbacks():
    task = {"status": "SUCCESS", "video_url": "https://other/x.mp4", "data": {"video_url": VIDEO}}

    assert parse_poll_answer(200, {"code": "success", "data": task}).video_url == VIDEO


def test_flat_variant_reads_status_and_url_at_top_level():
    body = {"id": "veo3:abc", "status": "processing", "video_url": None}
    assert parse_poll_answer(200, body).state is UpstreamState.RUNNING

    body = {"id": "veo3:abc", "status": "success", "video_url": VIDEO}
    result = parse_poll_answer(200, body)
    assert (result.state, result.video_url) == (UpstreamState.SUCCEEDED, VIDEO)


def test_v2_variant_reads_top_level_status_and_data_outputs():
    body = {
        "task_id": TASK,
        "status": "SUCCESS",
        "progress": "100%",
        "data": {"output": VIDEO, "outputs": [VIDEO]},
    }

    result = parse_poll_answer(200, body)

    assert (result.state, result.video_url, result.progress) == (
        UpstreamState.SUCCEEDED,
        VIDEO,
        100,
    )


def test_failure_keeps_chinese_fail_reason_verbatim():
    reason = "视频生成失败：提示词包含敏感内容"  # noqa: RUF001 -- verbatim gateway text
    result = parse_poll_answer(200, documented_answer(status="FAILURE", fail_reason=reason))

    assert result.state is UpstreamState.FAILED
    assert result.fail_reason == reason


def test_fail_reason_falls_back_to_inner_error_message():
    answer = documented_answer(status="FAILURE", data={"error": {"message": "blocked"}})

    assert parse_poll_answer(200, answer).fail_reason == "blocked"


@pytest.mark.parametrize(
    "data", [None, "garbage", {}, {"status": None}, {"status": 7}, {"status": "WEIRD"}]
)
def test_unreadable_status_is_unknown_not_a_crash(data):
    result = parse_poll_answer(200, {"code": "success", "data": data})

    assert result.state is UpstreamState.UNKNOWN
    assert result.video_url is None


def test_poll_answer_that_is_not_an_object_is_transient():
    with pytest.raises(TransientUpstreamError) as caught:
        parse_poll_answer(200, "<html>")

    assert caught.value.code == "malformed_response"


def test_poll_answer_task_not_exist_code_is_task_not_found():
    body = {"code": "task_not_exist", "message": "task_not_exist", "data": None}

    with pytest.raises(TaskNotFoundError):
        parse_poll_answer(200, body)


def test_poll_answer_other_error_code_is_transient():
    body = {"code": "fail_to_fetch_task", "message": "获取任务失败", "data": None}

    with pytest.raises(TransientUpstreamError) as caught:
        parse_poll_answer(200, body)

    assert caught.value.message == "获取任务失败"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("NOT_START", UpstreamState.PENDING),
        ("SUBMITTED", UpstreamState.PENDING),
        ("QUEUED", UpstreamState.PENDING),
        ("IN_PROGRESS", UpstreamState.RUNNING),
        ("SUCCESS", UpstreamState.SUCCEEDED),
        ("FAILURE", UpstreamState.FAILED),
        ("UNKNOWN", UpstreamState.UNKNOWN),
        ("pending", UpstreamState.PENDING),
        ("queued", UpstreamState.PENDING),
        ("submitted", UpstreamState.PENDING),
        ("not_start", UpstreamState.PENDING),
        ("processing", UpstreamState.RUNNING),
        ("running", UpstreamState.RUNNING),
        ("in_progress", UpstreamState.RUNNING),
        ("success", UpstreamState.SUCCEEDED),
        ("succeeded", UpstreamState.SUCCEEDED),
        ("completed", UpstreamState.SUCCEEDED),
        ("failed", UpstreamState.FAILED),
        ("failure", UpstreamState.FAILED),
        ("error", UpstreamState.FAILED),
        ("cancelled", UpstreamState.FAILED),
        (" Success ", UpstreamState.SUCCEEDED),
        ("SUCCEEDED", UpstreamState.SUCCEEDED),
        ("Succeed", UpstreamState.SUCCEEDED),
        ("done", UpstreamState.SUCCEEDED),
        ("finished", UpstreamState.SUCCEEDED),
        ("TASK_STATUS_SUCCEEDED", UpstreamState.SUCCEEDED),
        ("fail", UpstreamState.FAILED),
        ("expired", UpstreamState.FAILED),
        ("CANCELED", UpstreamState.FAILED),
        ("timed-out", UpstreamState.FAILED),
        ("JOB_STATE_FAILED", UpstreamState.FAILED),
        ("rejected", UpstreamState.FAILED),
        ("in-progress", UpstreamState.RUNNING),
        ("In Progress", UpstreamState.RUNNING),
        ("generating", UpstreamState.RUNNING),
        ("NOT_STARTED", UpstreamState.PENDING),
        ("waiting", UpstreamState.PENDING),
        ("failed_retrying", UpstreamState.UNKNOWN),
        ("not_ready", UpstreamState.UNKNOWN),
        ("no_error", UpstreamState.UNKNOWN),
        ("", UpstreamState.UNKNOWN),
        ("✨", UpstreamState.UNKNOWN),
        (None, UpstreamState.UNKNOWN),
        (3, UpstreamState.UNKNOWN),
    ],
)
def test_status_mapping(raw, expected):
    assert map_status(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("42%", 42),
        ("42", 42),
        (" 42 % ", 42),
        (42, 42),
        (42.9, 42),
        ("99.9%", 99),
        ("100%", 100),
        ("0%", 0),
        (150, 100),
        (-5, 0),
        ("", None),
        ("%", None),
        ("abc", None),
        (None, None),
        (True, None),
        ("nan", None),
        ([42], None),
    ],
)
def test_progress_parsing(raw, expected):
    assert parse_progress(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1750221308, datetime.fromtimestamp(1750221308, UTC)),
        (1750221453056, datetime.fromtimestamp(1750221453.056, UTC)),
        (1750221308.5, datetime.fromtimestamp(1750221308.5, UTC)),
        ("1750221308", datetime.fromtimestamp(1750221308, UTC)),
        ("2025-06-18T04:35:08Z", datetime(2025, 6, 18, 4, 35, 8, tzinfo=UTC)),
        ("2025-06-18T04:35:08", datetime(2025, 6, 18, 4, 35, 8, tzinfo=UTC)),
        (0, None),
        ("0", None),
        (-1, None),
        (None, None),
        (False, None),
        ("yesterday", None),
        (1e300, None),
        ({}, None),
    ],
)
def test_time_parsing_accepts_seconds_and_milliseconds(raw, expected):
    parsed = parse_time(raw)

    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None


def test_images_go_in_the_order_the_gateway_reads_them_and_bytes_go_inline():
    png = b"\x89PNG\r\n\x1a\nrest"
    req = SubmitRequest(
        model="veo2-fast-frames",
        prompt="p",
        enhance_prompt=False,
        images=[
            RemoteImage(ImageRole.REFERENCE, "https://img.example/element.png"),
            InlineImage(ImageRole.LAST_FRAME, "image/png", png),
            RemoteImage(ImageRole.FIRST_FRAME, "https://img.example/first.png"),
        ],
    )

    assert submit_payload(req)["images"] == [
        "https://img.example/first.png",
        "data:image/png;base64,iVBORw0KGgpyZXN0",
        "https://img.example/element.png",
    ]


# --- where the video URL can be -------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"code": "success", "data": {"status": "SUCCESS", "result_url": VIDEO, "data": {}}},
        {"code": "success", "data": {"status": "SUCCESS", "fail_reason": f" {VIDEO} "}},
        {"code": "success", "data": {"status": "SUCCESS", "data": {"outputs": [{"uri": VIDEO}]}}},
        {"code": "success", "data": {"status": "SUCCESS", "data": {"result_url": VIDEO}}},
        {"status": "succeeded", "result_url": VIDEO},
        {"status": "completed", "output": VIDEO},
        {"status": "completed", "outputs": [VIDEO]},
        # anywhere else in the answer, under any name
        {
            "code": "success",
            "data": {"status": "SUCCESS", "data": {"result": {"videos": [{"url": VIDEO}]}}},
        },
        {"code": "success", "data": {"status": "SUCCESS", "data": {"media": {"mp4": VIDEO}}}},
        {
            "code": "success",
            "data": {
                "status": "SUCCESS",
                "data": {
                    "response": {
                        "generateVideoResponse": {"generatedSamples": [{"video": {"uri": VIDEO}}]}
                    }
                },
            },
        },
        {"status": "success", "message": f"视频已生成：{VIDEO}。"},  # noqa: RUF001 -- gateway text
    ],
    ids=[
        "data.result_url",
        "fail_reason",
        "outputs[0].uri",
        "data.data.result_url",
        "flat result_url",
        "flat output",
        "flat outputs",
        "result.videos[0].url",
        "media.mp4",
        "gemini samples",
        "url in text",
    ],
)
def test_a_finished_video_is_found_wherever_its_url_moved(body):
    result = parse_poll_answer(200, body)

    assert result.state is UpstreamState.SUCCEEDED
    assert result.video_url == VIDEO
    assert result.failure() is None


def test_the_known_place_wins_over_other_urls_in_the_answer():
    body = documented_answer(result_url="https://cdn.example/other.mp4")
    body["data"]["data"]["preview"] = "https://cdn.example/preview.mp4"

    assert parse_poll_answer(200, body).video_url == VIDEO


def test_a_video_file_wins_over_another_url_and_images_inputs_and_hooks_never_count():
    task = {
        "status": "SUCCESS",
        "notify_hook": "https://us.example/v1/upstream/callback/tok.mp4",
        "images": ["https://img.example/first.mp4"],
        "properties": {"input_image": "https://img.example/in.png"},
        "data": {
            "thumbnail": "https://cdn.example/thumb.jpg",
            "cover_url": "https://cdn.example/cover.mp4",
            "page": "https://cdn.example/watch?v=1",
            "file": VIDEO,
        },
    }

    assert parse_poll_answer(200, {"code": "success", "data": task}).video_url == VIDEO


def test_some_other_url_is_still_better_than_losing_the_video():
    task = {"status": "SUCCESS", "data": {"file": "https://cdn.example/download?id=42"}}

    result = parse_poll_answer(200, {"code": "success", "data": task})

    assert result.video_url == "https://cdn.example/download?id=42"


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "   ",
        "not a url",
        "ftp://cdn.example/v.mp4",
        "https://",
        "/relative/v.mp4",
        "https://cdn.example/",
        "https://cdn.example/poster.png",
    ],
)
def test_things_that_are_not_a_video_url_are_not_taken_for_one(junk):
    body = documented_answer(fail_reason=junk, data={"status": "completed", "video_url": junk})

    result = parse_poll_answer(200, body)

    assert result.state is UpstreamState.SUCCEEDED
    assert result.video_url is None


def test_a_running_task_has_no_video_url_even_with_a_placeholder():
    body = documented_answer(status="IN_PROGRESS", progress="50%")

    result = parse_poll_answer(200, body)

    assert (result.state, result.video_url, result.progress) == (UpstreamState.RUNNING, None, 50)


# --- failures ---------------------------------------------------------------------------


def test_an_openai_shaped_failed_task_with_http_200_is_a_terminal_failure():
    body = {
        "id": "v1",
        "object": "video",
        "status": "failed",
        "error": {"message": "no", "code": "x"},
    }

    result = parse_poll_answer(200, body)

    assert result.state is UpstreamState.FAILED
    assert (result.fail_reason, result.fail_code) == ("no", "x")
    assert result.failure() == Failure(FailureCode.UPSTREAM_FAILED, "no")


def test_an_error_object_without_a_task_status_is_still_a_failed_request():
    with pytest.raises(TransientUpstreamError):
        parse_poll_answer(200, {"error": {"message": "rate limited", "type": "new_api_error"}})


def test_an_enveloped_error_code_beside_a_status_is_a_failed_request():
    with pytest.raises(TaskNotFoundError):
        parse_poll_answer(200, {"code": "task_not_exist", "message": "m", "status": "error"})


@pytest.mark.parametrize(
    ("task", "reason"),
    [
        ({"status": "failed", "message": "视频生成失败"}, "视频生成失败"),
        ({"status": "FAILURE", "failure_reason": "quota"}, "quota"),
        ({"status": "error", "error": "boom"}, "boom"),
        ({"status": "expired"}, "The upstream reported status 'expired'."),
    ],
)
def test_a_failure_keeps_whatever_reason_the_answer_gives(task, reason):
    result = parse_poll_answer(200, task)

    assert result.failure() == Failure(FailureCode.UPSTREAM_FAILED, reason)


@pytest.mark.parametrize(
    "code",
    ["rai_filtered", "PROMPT_BLOCKED", "moderation_blocked", "content_policy_violation", "SAFETY"],
)
def test_a_failure_whose_code_names_a_safety_filter_is_safety_filtered(code):
    body = {"status": "failed", "error": {"message": "blocked", "code": code}}

    assert parse_poll_answer(200, body).failure() == Failure(FailureCode.SAFETY_FILTERED, "blocked")


@pytest.mark.parametrize(
    "filtered",
    [
        {"raiMediaFilteredCount": 1},
        {"raiMediaFilteredCount": "2"},
        {"raiMediaFilteredReasons": ["Unsafe content."]},
        {"rai_media_filtered_count": 1, "rai_media_filtered_reasons": "Unsafe content."},
    ],
)
def test_success_without_a_video_and_with_safety_signs_fails_as_safety_filtered(filtered):
    body = documented_answer(data={"response": {"generateVideoResponse": filtered}})

    failure = parse_poll_answer(200, body).failure()

    assert failure is not None and failure.code == FailureCode.SAFETY_FILTERED
    if "Reasons" in str(filtered) or "reasons" in str(filtered):
        assert failure.message == "Unsafe content."


@pytest.mark.parametrize(
    "filtered", [{"raiMediaFilteredCount": 0}, {"raiMediaFilteredReasons": []}]
)
def test_a_zero_filter_count_is_no_safety_sign(filtered):
    body = documented_answer(data={"response": {"generateVideoResponse": filtered}})

    result = parse_poll_answer(200, body)

    assert (result.safety_filtered, result.failure(), result.video_url) == (False, None, None)


def test_a_video_that_came_wins_over_a_partial_safety_filter():
    body = documented_answer()
    body["data"]["data"]["raiMediaFilteredCount"] = 1

    result = parse_poll_answer(200, body)

    assert (result.video_url, result.failure()) == (VIDEO, None)
