"""Child processes: start one in its own process group, wait until it is ready, stop it.

The one place that starts and stops local processes: ``google-video dev``, the local
servers of the tests and benchmarks (``cli.localservices``), the chaos harness and the
benchmarks all go through :class:`Child`. Each child

- runs in a new session, so it leads its own process group: stopping it SIGKILLs whatever
  it spawned too, and a Ctrl-C at the terminal reaches only the supervisor, which stops
  its children in its own order;
- gets SIGKILL from the kernel if the supervising thread dies without cleaning up
  (``PR_SET_PDEATHSIG``, set only when started from the main thread: the signal follows
  the *thread* that forked), and from an atexit hook if the interpreter exits first;
- reads nothing (stdin is /dev/null) and writes to an appended log file, or where told.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

HOST = "127.0.0.1"
STOP_GRACE = 10.0  # seconds between the polite signal and SIGKILL
_PR_SET_PDEATHSIG = 1

# Where a child's output goes: a log file (appended, stderr included), subprocess.DEVNULL
# (stdout only; stderr still inherited) or None (both inherited from this process).
Output = Path | int | None


class ChildExited(RuntimeError):
    """A child exited while something was waiting for it to become ready."""

    def __init__(self, message: str, child: Child) -> None:
        super().__init__(message)
        self.child = child


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nothing listens on right now (another process may still
    take it before the caller binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether ``host:port`` accepts a TCP connection within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether a GET of ``url`` answers 200 within ``timeout`` seconds."""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(
    condition: Callable[[], bool],
    deadline: float,
    *,
    what: str,
    watch: Iterable[Child] = (),
    interval: float = 0.02,
) -> None:
    """Poll ``condition`` every ``interval`` seconds until it holds.

    ``deadline`` is a ``time.monotonic()`` value. Raises :class:`ChildExited` as soon as
    one of the ``watch`` children has exited, and ``TimeoutError`` at the deadline; both
    messages start with ``what``.
    """
    watched = list(watch)
    while not condition():
        for child in watched:
            if not child.alive:
                raise ChildExited(
                    f"{what}: {child.name} exited with code {child.returncode}"
                    + child.describe_log(),
                    child,
                )
        if time.monotonic() >= deadline:
            logs = "".join(child.describe_log() for child in watched)
            raise TimeoutError(f"{what}: not ready before the deadline{logs}")
        time.sleep(interval)


def wait_for_port(host: str, port: int, deadline: float, *, watch: Iterable[Child] = ()) -> None:
    """Wait until ``host:port`` accepts TCP connections (see :func:`wait_until`)."""
    wait_until(lambda: port_open(host, port), deadline, what=f"{host}:{port}", watch=watch)


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGKILL the child when this thread exits, or None
    off the main thread (a child started from a worker thread would die with that thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Child:
    """One child process leading its own process group.

    Construct, then :meth:`start` (again after it has stopped, for a restart). The
    Popen-like ``pid``, ``poll``, ``wait``, ``send_signal`` and ``returncode`` concern the
    group leader; :meth:`stop` and :meth:`kill` end the whole group and reap the leader.
    A group does not outlive its leader here: once ``poll``/``wait``/``alive`` see the
    leader gone, whatever is left of the group gets SIGKILL.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        output: Output = None,
        user: pwd.struct_passwd | None = None,
    ) -> None:
        """``env`` None inherits this environment; ``user`` runs the child as that user
        (with its primary group and no supplementary groups: needs root)."""
        self.name = name
        self.command = list(command)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.output = output
        self.user = user
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0  # time.monotonic() of the last start
        self._reaped = True  # no group of ours may still be alive

    def __repr__(self) -> str:
        return f"Child({self.name!r}, pid={self.pid}, alive={self.alive})"

    @property
    def log_path(self) -> Path | None:
        return self.output if isinstance(self.output, Path) else None

    @property
    def pid(self) -> int | None:
        """The leader's pid (also the process group id), None before the first start."""
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.poll() is None

    @property
    def returncode(self) -> int | None:
        """The leader's exit code (negative: killed by that signal); None while it runs."""
        return self.poll()

    def poll(self) -> int | None:
        """The leader's exit code, or None while it runs (or before the first start)."""
        proc = self.proc
        if proc is None or proc.poll() is None:
            return None
        self._reap_group()
        return proc.returncode

    def start(
        self,
        ready: Callable[[], bool] | None = None,
        *,
        timeout: float = 30.0,
        what: str | None = None,
        interval: float = 0.02,
    ) -> Self:
        """Spawn the process; with ``ready``, also wait until it holds (see
        :meth:`wait_ready`), killing the child if it does not.

        Raises ``RuntimeError`` if this child is already running, and whatever
        :meth:`wait_ready` raises.
        """
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.kill()  # reap what is left of an earlier run
        user, output = self.user, self.output
        with contextlib.ExitStack() as stack:
            stdout: int | IO[bytes] | None = None
            stderr: int | None = None
            if isinstance(output, Path):
                output.parent.mkdir(parents=True, exist_ok=True)
                stdout, stderr = stack.enter_context(output.open("ab")), subprocess.STDOUT
            else:
                stdout = output
            self.proc = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
                user=user.pw_uid if user is not None else None,
                group=user.pw_gid if user is not None else None,
                extra_groups=[] if user is not None else None,
            )
        self.started_at = time.monotonic()
        self._reaped = False
        atexit.register(self.kill)
        if ready is not None:
            try:
                self.wait_ready(ready, timeout=timeout, what=what, interval=interval)
            except BaseException:
                self.kill()
                raise
        return self

    def wait_ready(
        self,
        ready: Callable[[], bool],
        *,
        timeout: float = 30.0,
        what: str | None = None,
        interval: float = 0.02,
    ) -> None:
        """Poll ``ready`` until it holds; the child keeps running whatever happens.

        Raises :class:`ChildExited` if the child exits first, ``TimeoutError`` after
        ``timeout`` seconds; the messages name the log file and end with its last lines.
        """
        wait_until(
            ready,
            time.monotonic() + timeout,
            what=what or self.name,
            watch=(self,),
            interval=interval,
        )

    def send_signal(self, sig: int, *, group: bool = False) -> None:
        """Signal the leader (or, with ``group``, every process in its group); nothing if
        the leader has exited."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the leader to exit and return its code; ``subprocess.TimeoutExpired``
        after ``timeout`` seconds."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} has not been started")
        code = self.proc.wait(timeout=timeout)
        self._reap_group()
        return code

    def stop(
        self, sig: int = signal.SIGTERM, *, grace: float = STOP_GRACE, group: bool = False
    ) -> None:
        """Send ``sig`` (to the leader, or to the group), give it ``grace`` seconds to
        exit, then SIGKILL the whole group and reap the leader. Safe to call when the child
        has exited or was never started."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            self.send_signal(sig, group=group)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group now (a crash, for fault injection) and reap the
        leader. Does nothing once the group has been reaped."""
        proc = self.proc
        if proc is None or self._reaped:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self._reaped = True
        atexit.unregister(self.kill)

    def _reap_group(self) -> None:
        # The leader has exited and been reaped: SIGKILL what is left of its group now,
        # before its number can be reused by a new group leader.
        if not self._reaped:
            self.kill()

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the log file ("" without one)."""
        path = self.log_path
        if path is None:
            return ""
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def describe_log(self, lines: int = 20) -> str:
        """``" (log: PATH)"`` and the log's last lines, for error messages ("" without)."""
        if self.log_path is None:
            return ""
        tail = self.log_tail(lines)
        return f" (log: {self.log_path})" + (f"\n{tail}" if tail else "")

    def __enter__(self) -> Self:
        if not self.alive:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_all(
    children: Iterable[Child],
    sig: int = signal.SIGTERM,
    *,
    grace: float = STOP_GRACE,
    group: bool = False,
) -> None:
    """Stop several children in parallel: signal them all, give them ``grace`` seconds in
    total, then SIGKILL each group that is left and reap every leader."""
    children = list(children)
    for child in children:
        child.send_signal(sig, group=group)
    deadline = time.monotonic() + grace
    for child in children:
        if child.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        child.kill()
