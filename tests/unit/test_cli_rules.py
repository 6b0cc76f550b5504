"""The people CLI's rules that need no server: which side `keys`/`credits` run on, which
failed calls are sent again (with the same Idempotency-Key), and the one line each
failure becomes. The commands themselves run against a real stack in
tests/integration/test_people_cli.py."""

from __future__ import annotations

import argparse

import httpx
import pytest

from cli.failures import CliError
from cli.http_client import ApiClient, Remote
from cli.target import Side, side

URL = "http://api.test"


def _args(**flags: str | None) -> argparse.Namespace:
    base = {"url": None, "api_key": None, "data_dir": None, "database_url": None}
    return argparse.Namespace(**(base | flags))


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        ({}, {}, (Side.DATABASE, True)),
        ({}, {"GOOGLE_VIDEO_DATABASE_URL": "postgresql+asyncpg://db/x"}, (Side.DATABASE, False)),
        ({}, {"GOOGLE_VIDEO_DATA_DIR": "/srv/data"}, (Side.DATABASE, False)),
        ({}, {"GOOGLE_VIDEO_URL": URL}, (Side.API, False)),
        ({"url": URL}, {"GOOGLE_VIDEO_DATABASE_URL": "x"}, (Side.API, False)),
        ({"api_key": "gv_k"}, {}, (Side.API, False)),
        ({"data_dir": "/d"}, {"GOOGLE_VIDEO_URL": URL}, (Side.DATABASE, False)),
        ({"database_url": "sqlite://"}, {"GOOGLE_VIDEO_URL": URL}, (Side.DATABASE, False)),
    ],
)
def test_the_side_rule(
    monkeypatch: pytest.MonkeyPatch,
    flags: dict[str, str],
    env: dict[str, str],
    expected: tuple[Side, bool],
) -> None:
    for name in ("GOOGLE_VIDEO_URL", "GOOGLE_VIDEO_DATABASE_URL", "GOOGLE_VIDEO_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert side(_args(**flags)) == expected


def test_both_sides_at_once_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CliError, match="pass one kind") as flags:
        side(_args(url=URL, data_dir="/d"))
    assert flags.value.code == 2
    monkeypatch.setenv("GOOGLE_VIDEO_URL", URL)
    monkeypatch.setenv("GOOGLE_VIDEO_DATABASE_URL", "postgresql+asyncpg://db/x")
    with pytest.raises(CliError, match="both GOOGLE_VIDEO_URL and"):
        side(_args())


def _client(answers: list[httpx.Response | Exception], seen: list[httpx.Request]) -> ApiClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    remote = Remote(URL, "gv_test", timeout=5)
    return ApiClient(remote, delays=(0, 0, 0, 0), transport=httpx.MockTransport(handle))


def _problem(status: int, code: str, detail: str = "d") -> httpx.Response:
    body = {"type": "t", "title": "T", "status": status, "code": code, "detail": detail}
    return httpx.Response(status, json=body, headers={"x-request-id": "req-1"})


def test_a_create_is_sent_again_with_the_same_key_after_transient_failures() -> None:
    seen: list[httpx.Request] = []
    answers: list[httpx.Response | Exception] = [
        _problem(503, "unavailable"),
        httpx.ReadTimeout("slow"),  # the service has answered before: worth another try
        _problem(409, "idempotency_request_in_progress"),
        httpx.Response(200, json={"id": "video_1"}),
    ]
    with _client(answers, seen) as api:
        video = api.call(
            "POST", "/v1/videos", json={}, headers={"Idempotency-Key": "k"}, retry=True
        )
    assert video == {"id": "video_1"}
    assert [r.headers["idempotency-key"] for r in seen] == ["k"] * 4


@pytest.mark.parametrize(
    "first",
    [
        _problem(400, "validation_error"),
        _problem(402, "insufficient_credits"),
        _problem(429, "too_many_concurrent_tasks"),
        _problem(503, "service_disabled"),
    ],
)
def test_a_refusal_is_not_sent_again(first: httpx.Response) -> None:
    seen: list[httpx.Request] = []
    with _client([first, httpx.Response(200, json={})], seen) as api, pytest.raises(CliError):
        api.call("POST", "/v1/videos", json={}, retry=True)
    assert len(seen) == 1


def test_a_service_never_reached_is_reported_at_once() -> None:
    seen: list[httpx.Request] = []
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    api = _client([refused, httpx.Response(200, json={})], seen)
    with api, pytest.raises(CliError) as failure:
        api.call("GET", "/v1/videos", retry=True)
    assert len(seen) == 1
    assert str(failure.value) == (
        f"cannot reach {URL}: is the service running? (Connection refused)"
    )


@pytest.mark.parametrize(
    ("answer", "line"),
    [
        (
            _problem(401, "unauthorized", "The API key is not valid or has been revoked."),
            "the API key was refused: The API key is not valid or has been revoked."
            " (check GOOGLE_VIDEO_API_KEY or --api-key)",
        ),
        (_problem(404, "not_found", "No such video."), "T: No such video. (not_found)"),
        (_problem(500, "internal_error", "Oops."), "T: Oops. (internal_error, request id req-1)"),
        (
            httpx.Response(
                502, text="<html>bad gateway</html>", headers={"content-type": "text/html"}
            ),
            f"{URL} answered HTTP 502 (text/html): is it the google-video API?",
        ),
        (httpx.ReadTimeout("slow"), f"{URL}: no answer within 5 s (--timeout)"),
    ],
)
def test_each_failure_is_one_line(answer: httpx.Response | Exception, line: str) -> None:
    with _client([answer], []) as api, pytest.raises(CliError) as failure:
        api.call("GET", "/v1/videos/video_1")
    assert str(failure.value) == line
