"""The log formatter: library records and our events as one JSON object per line, an
exception inside its line, console text on a terminal (core/logging.py)."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import structlog

from core.logging import formatter, renders_json

ROOT = Path(__file__).resolve().parents[2]


def _record(name: str, level: int, message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_a_library_record_with_a_traceback_is_one_json_line() -> None:
    try:
        {}["missing"]
    except KeyError:
        record = _record("arq.worker", logging.ERROR, "%6.2fs ! %s failed", 0.5, "job")
        record.exc_info = sys.exc_info()
    with structlog.contextvars.bound_contextvars(request_id="req-1", task_id="video_1"):
        text = formatter(json=True).format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert list(line)[:4] == ["timestamp", "level", "logger", "event"]
    assert (line["level"], line["logger"], line["event"]) == (
        "error",
        "arq.worker",
        "0.50s ! job failed",
    )
    assert (line["request_id"], line["task_id"]) == ("req-1", "video_1")
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].rstrip().endswith("KeyError: 'missing'")


def test_console_text_for_people() -> None:
    text = formatter(json=False).format(_record("uvicorn.error", logging.WARNING, "careful"))
    assert "careful" in text and "[uvicorn.error]" in text and not text.startswith("{")


def test_console_tracebacks_never_show_local_variables() -> None:
    # With rich installed, structlog's console default printed every frame's locals: the
    # Settings with SECRET_KEY and ADMIN_KEY, an Authorization header (a tester's finding).
    def fails(secret_key: str) -> None:
        headers = {"Authorization": f"Bearer {secret_key}"}
        raise RuntimeError(f"{len(headers)} header")

    secret = "".join(["gv_secret_", "value_never_shown"])  # not in any source line
    try:
        fails(secret)
    except RuntimeError:
        record = _record("uvicorn.error", logging.ERROR, "Exception in ASGI application")
        record.exc_info = sys.exc_info()
    text = formatter(json=False).format(record)
    assert "RuntimeError: 1 header" in text and "Traceback" in text
    assert secret not in text


def test_auto_is_json_unless_the_stream_is_a_terminal() -> None:
    leader, follower = pty.openpty()
    file = io.StringIO()
    with os.fdopen(follower, "w") as terminal:
        assert not renders_json("auto", terminal)
        assert renders_json("auto", file)
        assert renders_json("json", terminal) and not renders_json("console", file)
    os.close(leader)


def test_a_process_logs_every_kind_of_line_as_json() -> None:
    """A real process: our events, a library's record, a warning and two tracebacks."""
    script = textwrap.dedent(
        """
        import logging, warnings, structlog
        from core.logging import configure
        configure("auto", "INFO")
        log = structlog.get_logger("ours")
        with structlog.contextvars.bound_contextvars(request_id="r-9"):
            log.info("hello", n=1)
            log.debug("hidden")
            logging.getLogger("uvicorn.error").info("Started server process")
            try:
                raise ValueError("bad value")
            except ValueError:
                log.exception("ours_failed")
                logging.getLogger("arq.worker").exception("job failed")
        warnings.warn("deprecated thing")
        logging.getLogger("alembic.runtime.migration").info("quiet at INFO")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(text) for text in result.stderr.splitlines()]
    assert [(e["logger"], e["event"]) for e in lines] == [
        ("ours", "hello"),
        ("uvicorn.error", "Started server process"),
        ("ours", "ours_failed"),
        ("arq.worker", "job failed"),
        ("py.warnings", lines[4]["event"]),
    ]
    assert "UserWarning: deprecated thing" in lines[4]["event"]
    assert all(e["request_id"] == "r-9" for e in lines[:4])
    for failed in lines[2:4]:
        assert "ValueError: bad value" in failed["exception"], failed


def test_arq_lines_of_a_poll_hop_are_quiet_but_its_failures_are_not() -> None:
    """Two INFO lines per hop of every running task: dropped; failures, retries, other
    jobs and arq's own lines show; LOG_LEVEL=DEBUG shows everything again."""
    script = textwrap.dedent(
        """
        import logging, sys
        from core.logging import configure
        configure("json", sys.argv[1])
        arq = logging.getLogger("arq.worker")
        arq.info("%6.2fs → %s(%s)%s", 0.1, "poll:video_1:3:poll_task", "'video_1', 3", "")
        arq.info("%6.2fs ← %s ● %s", 0.1, "poll:video_1:3:poll_task", "'pending'")
        arq.info("%6.2fs → %s(%s)%s", 0.1, "submit:video_1:submit_task", "'video_1'", "")
        arq.info("%6.2fs ↻ %s retrying job in %0.2fs", 0.1, "poll:video_1:4:poll_task", 1.0)
        arq.exception("%6.2fs ! %s failed, %s: %s", 0.1, "poll:video_1:5:poll_task", "E", "x")
        arq.info("Starting worker for %d functions: %s", 1, "poll_task")
        """
    )

    def events(level: str) -> list[str]:
        result = subprocess.run(
            [sys.executable, "-c", script, level],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        return [json.loads(text)["event"] for text in result.stderr.splitlines()]

    shown = events("INFO")
    assert len(shown) == 4 and not any("poll:video_1:3" in e for e in shown), shown
    assert "submit:video_1:submit_task" in shown[0] and "retrying" in shown[1]
    assert "failed" in shown[2] and shown[3].startswith("Starting worker")
    assert len(events("DEBUG")) == 6
