from typing import Any

import httpx
import pytest

from worker.upstream.errors import (
    AmbiguousSubmitError,
    OperatorProblemError,
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
        (401, "whatever", "poll", OperatorProblemError, "unauthorized"),
        (403, "", "submit", OperatorProblemError, "unauthorized"),
        (402, "", "submit", OperatorProblemError, "quota_exhausted"),
        (403, "quota_not_enough", "submit", OperatorProblemError, "quota_exhausted"),
        (429, "insufficient_quota", "poll", OperatorProblemError, "quota_exhausted"),
        (403, "", "download", PermanentUpstreamError, "download_forbidden"),
        (404, "", "download", PermanentUpstreamError, "download_not_found"),
        (410, "", "download", PermanentUpstreamError, "download_not_found"),
        (404, "", "poll", OperatorProblemError, "endpoint_not_found"),
        (404, "", "submit", PermanentUpstreamError, "http_404"),
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


# --- whose problem: the operator's key or account -------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "cause"),
    [
        (401, {"error": {"message": "无效的令牌", "type": "new_api_error"}}, "auth"),
        (
            401,
            {"error": {"message": "[sk-a***] 该令牌额度已用尽", "type": "new_api_error"}},
            "quota",
        ),
        (403, {"code": "quota_not_enough", "message": "user quota is not enough"}, "quota"),
        (403, {"error": {"message": "用户额度不足", "type": "new_api_error"}}, "quota"),
        (403, {"error": {"message": "Key revoked", "code": "invalid_api_key"}}, "auth"),
        (403, "<html><body>Access denied by the WAF</body></html>", "auth"),
        (401, {"error": {"message": "Token Quota Exhausted", "type": "x"}}, "quota"),
        (200, {"code": "pre_consume_token_quota_failed", "message": "预扣费额度失败"}, "quota"),
    ],
)
@pytest.mark.parametrize("op", ["submit", "poll", "check"])
def test_a_refused_key_or_account_is_the_operators_problem_with_its_cause(status, body, cause, op):
    response = httpx.Response(status, json=body, request=REQUEST)
    if isinstance(body, str):
        response = httpx.Response(status, text=body, request=REQUEST)

    error = error_from_response(response, op)

    assert type(error) is OperatorProblemError
    assert error.cause == cause
    assert error.status == status


def test_operator_problem_keeps_the_gateways_own_code_and_text():
    error = error_from_response(
        gateway_error(403, "quota_not_enough", "user quota is not enough"), "submit"
    )

    assert isinstance(error, OperatorProblemError)
    assert error.upstream_code == "quota_not_enough"
    assert error.message == "user quota is not enough"


def test_a_forbidden_download_is_the_cdn_url_not_the_operator():
    error = error_from_response(gateway_error(403, "quota_not_enough"), "download")

    assert type(error) is PermanentUpstreamError
    assert error.code == "download_forbidden"


NGINX_404 = "<html>\n<head><title>404 Not Found</title></head>\n<body></body>\n</html>\n"
# new-api's answer to a path it has no route for (a base URL with a wrong prefix).
NEW_API_NO_ROUTE = {
    "error": {
        "message": "Invalid URL (GET /v1/google/v1/tasks/t-1)",
        "type": "invalid_request_error",
        "param": "",
        "code": "",
    }
}


@pytest.mark.parametrize("body", [NGINX_404, "", NEW_API_NO_ROUTE, {"detail": "Not Found"}])
def test_a_404_on_a_poll_is_the_operators_address_not_the_tasks_end(body):
    error = error_from_response(_response(404, body), "poll")

    assert type(error) is OperatorProblemError
    assert (error.cause, error.code, error.status) == ("endpoint", "endpoint_not_found", 404)


@pytest.mark.parametrize("status", [400, 404])
def test_the_gateways_task_not_exist_stays_the_tasks_end_whatever_the_status(status):
    error = error_from_response(gateway_error(status, "task_not_exist"), "poll")

    assert type(error) is TaskNotFoundError


def test_a_404_on_a_submit_or_a_download_is_not_an_operator_problem():
    submit = error_from_response(_response(404, NGINX_404), "submit")
    download = error_from_response(_response(404, NGINX_404), "download")

    assert (type(submit), submit.code) == (PermanentUpstreamError, "http_404")
    assert (type(download), download.code) == (PermanentUpstreamError, "download_not_found")


# --- who answered: the gateway or a proxy in front of it ------------------------------

NGINX_504 = "<html><head><title>504 Gateway Time-out</title></head><body></body></html>"
CLOUDFLARE_524 = {
    "type": "https://developers.cloudflare.com/support/troubleshooting/http-status-codes/",
    "title": "Error 524: A timeout occurred",
    "status": 524,
    "detail": "The origin web server timed out responding to this request.",
    "error_code": 524,
    "cloudflare_error": True,
    "retryable": True,
}


def _response(status: int, body: object) -> httpx.Response:
    if isinstance(body, dict):
        return httpx.Response(status, json=body, request=REQUEST)
    return httpx.Response(status, text=str(body), request=REQUEST)


@pytest.mark.parametrize("status", [502, 504, 520, 524, 598, 599])
@pytest.mark.parametrize(
    "body",
    [
        NGINX_504,
        "",
        "upstream request timeout",
        CLOUDFLARE_524,
        {"message": "Endpoint request timed out"},
    ],
)
def test_a_proxys_forwarded_error_on_submit_is_ambiguous(status, body):
    error = error_from_response(_response(status, body), "submit")

    assert type(error) is AmbiguousSubmitError
    assert error.code == f"proxy_{status}"
    assert error.status == status
    assert f"HTTP {status}" in error.message


@pytest.mark.parametrize("status", [502, 504, 520, 521, 522, 523, 524])
@pytest.mark.parametrize("body", [NGINX_504, "", CLOUDFLARE_524])
def test_the_same_proxy_errors_on_a_poll_are_transient(status, body):
    error = error_from_response(_response(status, body), "poll")

    assert type(error) is TransientUpstreamError


@pytest.mark.parametrize("status", [521, 522, 523, 500, 503])
@pytest.mark.parametrize("body", [NGINX_504, "", CLOUDFLARE_524])
def test_proxy_errors_that_never_reached_the_gateway_are_safe_to_retry(status, body):
    error = error_from_response(_response(status, body), "submit")

    assert type(error) is TransientUpstreamError


@pytest.mark.parametrize(
    "body",
    [
        {"code": "do_request_failed", "message": "请求上游地址失败", "data": None},
        {"code": "bad_response_status_code", "message": "bad response", "data": None},
        {
            "error": {
                "message": "当前分组 default 下对于模型 veo3.1 无可用渠道",
                "type": "new_api_error",
            }
        },
        {"success": False, "message": "系统繁忙"},
    ],
)
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_the_gateways_own_5xx_on_submit_created_no_task_and_is_transient(body, status):
    error = error_from_response(_response(status, body), "submit")

    assert type(error) is TransientUpstreamError
