"""The short chaos run: workers SIGKILLed, Redis flushed, PostgreSQL restarted, and still
nothing lost, nothing charged twice.

It runs ``python -m tests.chaos.run`` as a subprocess: the run owns its PostgreSQL (it
restarts it), so it uses none of the session fixtures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHORT = ["--tasks", "60", "--workers", "2", "--kill-every", "2", "--seed", "7"]
MUST_BE_ZERO = (
    "still running",
    "lost",
    "settled twice",
    "created twice",
    "ledger invariant violations",
    "unexpected outcomes",
    "creates refused",
    "orphan processes after cleanup",
)


@pytest.mark.slow
def test_short_chaos_run_loses_nothing_and_charges_nothing_twice(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    command = [sys.executable, "-m", "tests.chaos.run", *SHORT, "--max-seconds", "180"]
    result = subprocess.run(
        [*command, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    (tmp_path / "chaos.out").write_text(result.stdout + result.stderr)
    # The per-kill progress lines are noise in a failure message; the table is what matters.
    lines = [line for line in result.stdout.splitlines() if "fault: SIGKILL" not in line]
    output = "\n".join(lines)[-12000:] + "\n" + result.stderr[-4000:]
    assert result.returncode == 0, output
    report = json.loads(out.read_text())
    metrics = report["metrics"]
    for name in MUST_BE_ZERO:
        assert metrics[name] == 0, f"{name} = {metrics[name]}\n{output}"
    assert metrics["accepted"] == 60, output
    assert metrics["completed"] > 0, output
    # The faults really happened.
    assert metrics["worker kills"] >= 1, output
    assert metrics["redis flushes"] == 1 and metrics["postgresql restarts"] == 1, output
