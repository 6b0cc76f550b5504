"""cli.supervise with real short-lived children (``python -c`` scripts)."""

from __future__ import annotations

import functools
import os
import signal
import socket
import sys
import time
from pathlib import Path

import psutil
import pytest

from cli.supervise import (
    HOST,
    Child,
    ChildExited,
    free_port,
    port_open,
    stop_all,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
SLEEP = "import time; time.sleep(60)"
# Listens on argv[1] after argv[2] seconds, then waits to be stopped.
LISTEN_LATE = (
    "import socket, sys, time\n"
    "time.sleep(float(sys.argv[2]))\n"
    "s = socket.socket()\n"
    "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
    "s.listen()\n"
    "time.sleep(60)\n"
)
# Starts a grandchild, writes its pid to argv[1], then sleeps (or exits, with argv[2]).
WITH_GRANDCHILD = (
    "import pathlib, subprocess, sys, time\n"
    f"g = subprocess.Popen([sys.executable, '-c', {SLEEP!r}])\n"
    "pathlib.Path(sys.argv[1]).write_text(str(g.pid))\n"
    "time.sleep(0 if len(sys.argv) > 2 else 60)\n"
)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan may wait a moment for init to reap it)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone(pid: int, seconds: float = 5.0) -> None:
    wait_until(lambda: not _running(pid), time.monotonic() + seconds, what=f"pid {pid} to exit")


def _pid_in(path: Path) -> int:
    wait_until(lambda: path.exists() and path.read_text() != "", time.monotonic() + 10, what="pid")
    return int(path.read_text())


def test_start_waits_until_ready(tmp_path: Path) -> None:
    port = free_port()
    child = Child("late", [PY, "-c", LISTEN_LATE, str(port), "0.3"], output=tmp_path / "x.log")
    started = time.monotonic()
    with child.start(functools.partial(port_open, HOST, port), timeout=10):
        assert time.monotonic() - started >= 0.3
        assert port_open(HOST, port)
        assert child.alive
    assert not child.alive
    assert child.returncode == -signal.SIGTERM


def test_child_exiting_early_is_a_clear_error_with_the_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "early.log"
    script = "import sys; print('no config found', file=sys.stderr); sys.exit(3)"
    child = Child("early", [PY, "-c", script], output=log)
    with pytest.raises(ChildExited) as caught:
        child.start(lambda: False, timeout=10, what="early on port 1")
    message = str(caught.value)
    assert message.startswith("early on port 1: early exited with code 3")
    assert str(log) in message
    assert "no config found" in message  # stderr goes to the log too
    assert caught.value.child is child
    assert not child.alive


def test_not_ready_before_the_deadline_kills_the_child(tmp_path: Path) -> None:
    child = Child("slow", [PY, "-c", SLEEP])
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="slow: not ready before the deadline"):
        child.start(lambda: False, timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 5
    assert not child.alive
    assert child.returncode == -signal.SIGKILL


def test_stop_kills_the_whole_group_grandchild_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    child = Child("parent", [PY, "-c", WITH_GRANDCHILD, str(pid_file)]).start()
    grandchild = _pid_in(pid_file)
    assert _running(grandchild)
    assert os.getpgid(grandchild) == child.pid

    child.stop()  # SIGTERM reaches only the leader; the group's SIGKILL the grandchild

    assert child.returncode == -signal.SIGTERM
    _gone(grandchild)


def test_a_leader_that_exits_on_its_own_takes_its_group_along(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    child = Child("parent", [PY, "-c", WITH_GRANDCHILD, str(pid_file), "exit"]).start()
    grandchild = _pid_in(pid_file)
    wait_until(lambda: not child.alive, time.monotonic() + 10, what="the leader to exit")
    assert child.returncode == 0
    _gone(grandchild)


def test_stop_sends_sigkill_after_the_grace_period() -> None:
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = Child("stubborn", [PY, "-c", script], output=Path("/dev/null"))
    # Ready once the interpreter is up far enough to ignore SIGTERM: its handler is set.
    child.start(functools.partial(_ignores_sigterm, child), timeout=10)
    started = time.monotonic()
    child.stop(grace=0.3)
    assert 0.3 <= time.monotonic() - started < 5
    assert child.returncode == -signal.SIGKILL


def test_stop_of_a_dead_or_never_started_child_is_fine() -> None:
    child = Child("quick", [PY, "-c", "pass"])
    child.stop()  # never started
    child.kill()
    child.start()
    assert child.wait(timeout=10) == 0
    child.stop()
    child.kill()
    child.stop()
    assert child.returncode == 0
    assert not child.alive


def test_restart_after_stop_and_context_manager() -> None:
    child = Child("sleeper", [PY, "-c", SLEEP])
    with child:
        first = child.pid
        assert child.alive
    assert not child.alive
    with pytest.raises(RuntimeError, match="already running"):
        child.start().start()
    assert child.pid != first
    child.stop()


def test_stop_all_stops_children_in_parallel() -> None:
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1.0), sys.exit(0)))\n"
        "time.sleep(60)\n"
    )
    children = [Child(f"drain-{i}", [PY, "-c", script]) for i in range(3)]
    for child in children:
        child.start(functools.partial(_handles_sigterm, child), timeout=10)
    started = time.monotonic()
    stop_all(children, grace=10)
    # Three 1 s drains at once, not one after another (3 s).
    assert time.monotonic() - started < 2.5
    assert [child.returncode for child in children] == [0, 0, 0]


def test_output_appends_to_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "twice.log"  # the directory is created
    for word in ("first", "second"):
        child = Child("echo", [PY, "-c", f"print({word!r})"], output=log).start()
        assert child.wait(timeout=10) == 0
    assert log.read_text().split() == ["first", "second"]
    assert child.log_tail(1) == "second"


def test_child_dies_with_a_supervisor_that_is_sigkilled(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: no orphan even when the supervisor gets no chance to clean up."""
    pid_file = tmp_path / "sleeper.pid"
    script = (
        "import pathlib, sys, time\n"
        "from cli.supervise import Child\n"
        f"c = Child('sleeper', [sys.executable, '-c', {SLEEP!r}]).start()\n"
        "pathlib.Path(sys.argv[1]).write_text(str(c.pid))\n"
        "time.sleep(60)\n"
    )
    supervisor = Child("supervisor", [PY, "-c", script, str(pid_file)], cwd=ROOT).start()
    sleeper = _pid_in(pid_file)
    assert _running(sleeper)
    supervisor.send_signal(signal.SIGKILL)  # the leader only: the sleeper has its own group
    assert supervisor.wait(timeout=10) == -signal.SIGKILL
    _gone(sleeper)


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind((HOST, port))
    assert not port_open(HOST, port)


def _signal_handler(child: Child) -> str:
    """The SIGTERM disposition bit of the child's /proc status: ignored, caught or neither."""
    assert child.pid is not None
    status = Path(f"/proc/{child.pid}/status").read_text()
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    bit = 1 << (signal.SIGTERM - 1)
    if int(fields["SigIgn"], 16) & bit:
        return "ignored"
    if int(fields["SigCgt"], 16) & bit:
        return "caught"
    return "default"


def _ignores_sigterm(child: Child) -> bool:
    return _signal_handler(child) == "ignored"


def _handles_sigterm(child: Child) -> bool:
    return _signal_handler(child) == "caught"
