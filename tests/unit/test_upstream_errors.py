import pickle

import pytest

from worker.upstream.errors import (
    AmbiguousSubmitError,
    OperatorProblemError,
    PermanentUpstreamError,
    TaskNotFoundError,
    TransientUpstreamError,
    UpstreamError,
)


def test_tree_lets_callers_catch_each_family_separately():
    assert issubclass(TaskNotFoundError, PermanentUpstreamError)
    assert issubclass(OperatorProblemError, PermanentUpstreamError)
    assert not issubclass(OperatorProblemError, TaskNotFoundError)
    assert not issubclass(AmbiguousSubmitError, TransientUpstreamError | PermanentUpstreamError)
    assert not issubclass(TransientUpstreamError, PermanentUpstreamError)
    for cls in (TransientUpstreamError, PermanentUpstreamError, AmbiguousSubmitError):
        assert issubclass(cls, UpstreamError)


def test_error_keeps_upstream_message_verbatim():
    error = PermanentUpstreamError("invalid_request", "提示词不能为空", status=400, body={"a": 1})

    assert error.message == "提示词不能为空"
    assert error.code == "invalid_request"
    assert error.status == 400
    assert error.body == {"a": 1}
    assert str(error) == "invalid_request (HTTP 400): 提示词不能为空"


def test_transient_error_defaults_retry_after_to_none():
    assert TransientUpstreamError("timeout", "timed out").retry_after is None


@pytest.mark.parametrize(
    "error",
    [
        TransientUpstreamError("rate_limited", "上游负载已饱和", status=429, retry_after=3.0),
        PermanentUpstreamError("invalid_request", "bad", status=400, body={"code": "x"}),
        TaskNotFoundError("task_not_exist", "task_not_exist", status=400, body="text"),
        AmbiguousSubmitError("submit_timeout", "timed out"),
        OperatorProblemError("quota", "额度不足", upstream_code="quota_not_enough", status=403),
    ],
)
def test_errors_survive_pickling_for_arq_results(error):
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 -- our own bytes

    assert type(copy) is type(error)
    assert copy.__dict__ == error.__dict__
    assert str(copy) == str(error)


def test_operator_problem_codes_name_the_cause_and_keep_the_upstream_code():
    quota = OperatorProblemError(
        "quota", "user quota is not enough", upstream_code="quota_not_enough"
    )
    auth = OperatorProblemError("auth", "无效的令牌", status=401)
    endpoint = OperatorProblemError("endpoint", "HTTP 404 Not Found", status=404)

    assert (quota.code, quota.cause, quota.upstream_code) == (
        "quota_exhausted",
        "quota",
        "quota_not_enough",
    )
    assert (auth.code, auth.cause, auth.upstream_code) == ("unauthorized", "auth", None)
    assert (endpoint.code, endpoint.cause) == ("endpoint_not_found", "endpoint")
