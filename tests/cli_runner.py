"""``google-video`` commands as real processes, without paying the interpreter's start-up
for each: a prewarmed parent (a "zygote", the pattern of Android's and of
``multiprocessing``'s forkserver) imports the command modules once, then forks one child per
command. The child is a fresh process as far as the command can tell: its own environment,
working directory, stdin from /dev/null, stdout and stderr to files, logging configured by
the command itself, and its exit status the test's return code. Only what the modules do at
import is shared, and they read nothing from the environment then.

A command costs ~1.4 s of CPU as ``python -m cli.main`` (mostly imports) and a few tens of
milliseconds here, which is most of what the CLI tests spent.

Protocol (JSON lines): the test process writes ``{"argv", "env", "cwd", "out", "err"}`` on
the zygote's stdin; the zygote answers ``{"pid"}`` after forking and ``{"rc"}`` when the
child exits (a negative ``rc`` is the signal that ended it, as in :mod:`subprocess`).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]

# What any command imports; importing them starts no thread and reads no variable.
_PRELOAD = (
    "cli.main",
    "cli.admin",
    "cli.remote_admin",
    "cli.videos",
    "cli.http_client",
    "cli.target",
    "core.logging",
)


class Zygote:
    """One prewarmed parent per test process; :meth:`run` is :func:`subprocess.run` for
    ``google-video ARGV`` (``capture_output=True, text=True, check=False``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None

    def _started(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tests.cli_runner"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        return self._proc

    def run(
        self,
        argv: list[str],
        *,
        env: Mapping[str, str],
        cwd: Path | str = ROOT,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        with self._lock, tempfile.TemporaryDirectory(prefix="cli-") as scratch:
            out, err = Path(scratch, "out"), Path(scratch, "err")
            proc = self._started()
            assert proc.stdin is not None and proc.stdout is not None
            request = {"argv": argv, "env": dict(env), "cwd": str(cwd), "out": str(out)}
            proc.stdin.write(json.dumps(request | {"err": str(err)}) + "\n")
            proc.stdin.flush()
            pid = _reply(proc.stdout, 30)["pid"]
            try:
                rc = _reply(proc.stdout, timeout)["rc"]
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                _reply(proc.stdout, 30)
                raise subprocess.TimeoutExpired(argv, timeout) from None
            return subprocess.CompletedProcess(
                ["google-video", *argv], rc, out.read_text(), err.read_text()
            )

    def close(self) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            self._proc.stdin.close()
            self._proc.wait(timeout=10)
            self._proc = None


_ZYGOTE = Zygote()


def run_cli(
    argv: list[str], *, env: Mapping[str, str], cwd: Path | str = ROOT, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``google-video ARGV`` in a fresh process forked from this test process's zygote
    (started on first use, gone when the test process is: its stdin closes)."""
    return _ZYGOTE.run(argv, env=env, cwd=cwd, timeout=timeout)


def _reply(stream: IO[str], timeout: float) -> dict[str, Any]:
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise TimeoutError
    line = stream.readline()
    if not line:
        raise RuntimeError("the CLI zygote died")
    answer: dict[str, Any] = json.loads(line)
    return answer


def _child(request: dict[str, Any]) -> int:
    """In the forked child: become the command's process, run it, return its status."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path, flags in (
        (0, os.devnull, os.O_RDONLY),
        (1, request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        opened = os.open(path, flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    sys.argv = ["google-video", *request["argv"]]
    from cli.main import main

    try:
        return main(request["argv"])
    except SystemExit as exc:  # argparse's --help and usage errors, as the interpreter
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1


def _serve() -> None:
    for name in _PRELOAD:
        __import__(name)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            # Anything else it raises ends the child as it ends an interpreter: the
            # traceback on stderr and status 1.
            code = _child(request)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code & 0xFF)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"rc": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    _serve()
