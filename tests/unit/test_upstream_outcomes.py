from typing import Any

import httpx
import pytest

from worker.upstream.errors import (
    AmbiguousSubmitError,
    PermanentUpstreamError,
    TaskNotFoundError,
    TransientUpstreamError,
)
from worker.upstream.gateway.errors import error_from_answer, error_from_response
from worker.upstream.outcomes import error_from_exception, error_from_malformed

REQUEST = httpx.Request("POST", "https://gw.example/google/v1/models/veo/videos")


def gateway_error(
    status: int, code: str, message: str = "msg", headers: dict[str, str] | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"code": code, "message": message, "data": None}
    return httpx.Response(status, json=body, headers=headers, request=REQUEST)


@pytest.mark.parametrize(
    ("status", "code", "op", "expected_type", "expected_code"),
    [
        (400, "invalid_request", "submit", PermanentUpstreamError, "invalid_request"),
        (400, "model_price_error", "submit", PermanentUpstreamError, "model_price_error"),
        (400, "model_mapping_failed", "submit", PermanentUpstreamError, "model_mapping_failed"),
        (400, "task_not_exist", "poll", TaskNotFoundError, "task_not_exist"),
        (500, "get_task_failed", "poll", TransientUpstreamError, "get_task_failed"),
        (500, "do_request_failed", "submit", TransientUpstreamError, "do_request_failed"),
        (400, "fail_to_fetch_task", "poll", TransientUpstreamError, "fail_to_fetch_task"),
        (429, "rate_limit", "submit", TransientUpstreamError, "rate_limit"),
        (503, "", "poll", TransientUpstreamError, "server_error"),
        (408, "", "poll", TransientUpstreamError, "request_timeout"),
        (401, "whatever", "poll", PermanentUpstreamError, "unauthorized"),
        (403, "", "submit", PermanentUpstreamError, "unauthorized"),
        (403, "", "download", PermanentUpstreamError, "download_forbidden"),
        (404, "", "download", PermanentUpstreamError, "download_not_found"),
        (410, "", "download", PermanentUpstreamError, "download_not_found"),
        (404, "", "poll", PermanentUpstreamError, "http_404"),
        (422, "", "submit", PermanentUpstreamError, "http_422"),
        (307, "", "submit", PermanentUpstreamError, "unexpected_redirect"),
    ],
)
def test_http_status_and_code_decide_the_error_family(
    status, code, op, expected_type, expected_code
):
    error = error_from_response(gateway_error(status, code), op)

    assert type(error) is expected_type
    assert error.code == expected_code
    assert error.status == status


def test_gateway_error_body_message_is_kept_verbatim():
    message = "当前分组上游负载已饱和，请稍后再试"  # noqa: RUF001 -- verbatim gateway text
    error = error_from_response(gateway_error(429, "", message), "submit")

    assert error.message == message
    assert error.body == {"code": "", "message": message, "data": None}


def test_retry_after_seconds_are_carried_on_transient_errors():
    error = error_from_response(gateway_error(429, "", headers={"Retry-After": "7"}), "submit")

    assert isinstance(error, TransientUpstreamError)
    assert error.retry_after == 7.0


def test_openai_style_error_body_gives_code_and_message():
    body = {"error": {"message": "无效的令牌", "type": "new_api_error", "code": None}}
    response = httpx.Response(400, json=body, request=REQUEST)

    error = error_from_response(response, "submit")

    assert isinstance(error, PermanentUpstreamError)
    assert error.code == "new_api_error"
    assert error.message == "无效的令牌"


def test_openai_style_error_code_wins_over_type():
    body = {"error": {"message": "m", "type": "invalid_request_error", "code": "bad_model"}}

    error = error_from_response(httpx.Response(400, json=body, request=REQUEST), "submit")

    assert error.code == "bad_model"


def test_html_error_page_becomes_status_line_message_and_text_snapshot():
    html = "<html><body>502 Bad Gateway</body></html>"
    response = httpx.Response(502, text=html, request=REQUEST)

    error = error_from_response(response, "poll")

    assert isinstance(error, TransientUpstreamError)
    assert error.message == "HTTP 502 Bad Gateway"
    assert error.body == html


def test_short_plain_text_error_body_is_the_message():
    response = httpx.Response(429, text="upstream is overloaded", request=REQUEST)

    error = error_from_response(response, "submit")

    assert error.message == "upstream is overloaded"
    assert error.code == "rate_limited"


def test_json_body_that_is_not_an_object_is_kept_as_text():
    error = error_from_response(httpx.Response(500, json=[1, 2], request=REQUEST), "poll")

    assert error.body == "[1,2]"


def test_error_code_on_a_200_submit_is_permanent():
    error = error_from_answer("submit", 200, "model_price_error", "模型价格未配置", {})

    assert type(error) is PermanentUpstreamError
    assert error.message == "模型价格未配置"


def test_unknown_error_code_on_a_200_poll_is_transient_because_the_task_may_exist():
    error = error_from_answer("poll", 200, "something_new", "m", {})

    assert type(error) is TransientUpstreamError


def test_task_not_exist_on_a_200_is_task_not_found():
    assert type(error_from_answer("poll", 200, "task_not_exist", "m", {})) is TaskNotFoundError


def test_transient_code_on_a_200_submit_is_transient():
    assert type(error_from_answer("submit", 200, "do_request_failed", "m", {})) is (
        TransientUpstreamError
    )


def test_malformed_submit_answer_is_ambiguous_and_malformed_poll_is_transient():
    submit = error_from_malformed("submit", 200, "oops", "not json")
    poll = error_from_malformed("poll", 200, "oops", "not json")

    assert type(submit) is AmbiguousSubmitError
    assert submit.code == "malformed_submit_response"
    assert type(poll) is TransientUpstreamError
    assert poll.code == "malformed_response"


@pytest.mark.parametrize(
    ("exc", "op", "expected_type", "expected_code"),
    [
        (httpx.ConnectError("refused"), "submit", TransientUpstreamError, "connect_error"),
        (httpx.ConnectTimeout("slow"), "submit", TransientUpstreamError, "connect_timeout"),
        (httpx.PoolTimeout("busy"), "submit", TransientUpstreamError, "connect_timeout"),
        (httpx.ReadTimeout("slow"), "submit", AmbiguousSubmitError, "submit_timeout"),
        (httpx.WriteTimeout("slow"), "submit", AmbiguousSubmitError, "submit_timeout"),
        (httpx.ReadError("reset"), "submit", AmbiguousSubmitError, "submit_connection_lost"),
        (
            httpx.RemoteProtocolError("disconnected"),
            "submit",
            AmbiguousSubmitError,
            "submit_connection_lost",
        ),
        (httpx.ReadTimeout("slow"), "poll", TransientUpstreamError, "timeout"),
        (httpx.ReadError("reset"), "download", TransientUpstreamError, "network_error"),
        (httpx.UnsupportedProtocol("ftp"), "download", PermanentUpstreamError, "invalid_url"),
        (httpx.InvalidURL("bad"), "download", PermanentUpstreamError, "invalid_url"),
        (httpx.TooManyRedirects("loop"), "download", PermanentUpstreamError, "too_many_redirects"),
    ],
)
def test_transport_failures_are_ambiguous_only_after_a_submit_may_have_been_sent(
    exc, op, expected_type, expected_code
):
    error = error_from_exception(exc, op)

    assert type(error) is expected_type
    assert error.code == expected_code
    assert error.status is None
