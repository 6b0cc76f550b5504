"""py-spy sampling of a running process, summarised from collapsed stacks.

Measurement only: ``pip install py-spy`` into the venv (it is not a project dependency).
``summarise(path)`` gives, per function, the share of samples where it is on the stack
(inclusive) and where it is the leaf (self), with idle samples (the event loop waiting in
epoll/select) dropped, so the shares are of the CPU the process actually burned.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_IDLE = ("select (selectors.py", "poll (selectors.py", "_run_once (asyncio", "run_forever (uvloop")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^)]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    exe = Path(sys.executable).with_name("py-spy")
    return str(exe) if exe.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path, rate: int = 250) -> subprocess.Popen[bytes] | None:
    """Start py-spy on ``pid`` for ``seconds`` in the background (raw collapsed stacks)."""
    exe = py_spy()
    if exe is None:
        return None
    command = [exe, "record", "--pid", str(pid), "--duration", str(round(seconds))]
    command += ["--rate", str(rate), "--format", "raw", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _label(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match.group("file")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{match.group('func')} ({file})"


def summarise(path: Path, top: int = 25) -> dict[str, object]:
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    busy = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        # py-spy prefixes the thread name as the first "frame"
        if frames and frames[0].startswith(("process ", "thread ")):
            frames = frames[1:]
        if not frames:
            continue
        if any(frames[-1].startswith(p) for p in _IDLE):
            idle += count
            continue
        busy += count
        leaf[_label(frames[-1])] += count
        for label in {_label(f) for f in frames}:
            inclusive[label] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / busy, 1)) for k, v in counter.most_common(top)] if busy else []

    return {
        "busy_samples": busy,
        "idle_samples": idle,
        "inclusive_pct": share(inclusive),
        "self_pct": share(leaf),
    }


def grouped(path: Path, groups: dict[str, tuple[str, ...]]) -> dict[str, float]:
    """Share of busy samples whose stack contains any frame matching each group's needles
    (first matching group wins, in order), plus 'other'."""
    totals: Counter[str] = Counter()
    busy = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        if not frames or any(frames[-1].startswith(p) for p in _IDLE):
            continue
        busy += count
        for name, needles in groups.items():
            if any(n in stack for n in needles):
                totals[name] += count
                break
        else:
            totals["other"] += count
    return {k: round(100 * v / busy, 1) for k, v in totals.most_common()} if busy else {}


if __name__ == "__main__":
    import json

    print(json.dumps(summarise(Path(sys.argv[1])), indent=2))
