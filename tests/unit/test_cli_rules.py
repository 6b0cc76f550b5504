"""The people CLI's rules that need no server: which side `keys`/`credits` run on, which
failed calls are sent again (with the same Idempotency-Key), and the one line each
failure becomes. The commands themselves run against a real stack in
tests/integration/test_people_cli.py."""

from __future__ import annotations

import argparse
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx
import pytest

from cli.failures import CliError
from cli.http_client import ApiClient, Remote, save_atomically
from cli.main import main
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


# --- what a command refuses before sending anything --------------------------------------

NOWHERE = ("--url", "http://127.0.0.1:9", "--api-key", "gv_test_key")


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one line ``google-video ARGV`` exits 2 with, nothing sent (no service runs at
    ``NOWHERE``: reaching for it would be exit 1, "cannot reach")."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    return err


def _fifo(tmp_path: Path) -> Path:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    return fifo


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda tmp: Path("/dev/null"), "not a regular file"),
        (_fifo, "not a regular file"),
        (lambda tmp: tmp, "is a directory"),
        (lambda tmp: tmp / "missing" / "v.mp4", "is not an existing folder"),
    ],
)
def test_a_wrong_output_is_refused_before_the_video_is_created(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make: Callable[[Path], Path], says: str
) -> None:
    target = make(tmp_path)
    line = _refused(capsys, "videos", "create", "--prompt", "x", "-o", str(target), *NOWHERE)
    assert says in line
    line = _refused(capsys, "videos", "download", "video_1", "-o", str(target), *NOWHERE)
    assert says in line


def _writes(data: bytes) -> Callable[[IO[bytes]], tuple[int, str]]:
    def write(target: IO[bytes]) -> tuple[int, str]:
        target.write(data)
        return len(data), ""

    return write


def test_a_download_replaces_only_a_regular_file(tmp_path: Path) -> None:
    regular = tmp_path / "v.mp4"
    regular.write_bytes(b"old")
    save_atomically(regular, _writes(b"new"))
    assert regular.read_bytes() == b"new" and not (tmp_path / "v.mp4.part").exists()

    fifo = _fifo(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"kept")
    link = tmp_path / "link.mp4"
    link.symlink_to(elsewhere)
    for target in (fifo, link):
        with pytest.raises(CliError) as refused:
            save_atomically(target, _writes(b"new"))
        assert refused.value.code == 2
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and link.is_symlink()
    assert elsewhere.read_bytes() == b"kept"

    # Nor through a link left under the .part name.
    (tmp_path / "w.mp4.part").symlink_to(elsewhere)
    with pytest.raises(CliError):
        save_atomically(tmp_path / "w.mp4", _writes(b"new"))
    assert elsewhere.read_bytes() == b"kept" and not (tmp_path / "w.mp4").exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("videos", "list", "--url", URL, "--api-key", "gv_secret_key\r"), "control character"),
        (("videos", "list", "--url", URL, "--api-key", "gv_sécret_key"), "non-ASCII"),
        (
            ("videos", "create", "--prompt", "x", "--idempotency-key", "clé", *NOWHERE),
            "--idempotency-key holds a non-ASCII",
        ),
        (("videos", "list", "--limit", "0", *NOWHERE), "--limit: 0 is not between 1 and 100"),
        (("credits", "show", "bob", "--limit", "-1", *NOWHERE), "not between 1 and 100"),
        (("keys", "list", "--database-url", "postgresql://h/db"), "use postgresql+asyncpg://"),
        (("keys", "list", "--database-url", "sqlite:////tmp/x.db"), "use sqlite+aiosqlite://"),
    ],
)
def test_unusable_values_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], says: str
) -> None:
    line = _refused(capsys, *argv)
    assert says in line and "secret" not in line and "sécret" not in line


def test_an_image_folder_and_a_binary_setting_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    line = _refused(capsys, "videos", "create", "--prompt", "x", "--image", str(tmp_path), *NOWHERE)
    assert "is a directory" in line
    binary = tmp_path / "models.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    line = _refused(capsys, "config", "set", f"models=@{binary}", *NOWHERE)
    assert "not UTF-8 text" in line
