"""deploy/Dockerfile: hadolint finds nothing (style included), a broken copy fails it, and
the image is built the way docs/deploy.md says: two stages, the lock installed with
--require-hashes, no compiler, a non-root runtime that copies only the venv."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.deploy.manifests import ROOT

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def hadolint(path: Path) -> list[str]:
    """hadolint's finding codes for ``path`` (every severity down to style)."""
    done = subprocess.run(
        [HADOLINT, "--no-color", "--failure-threshold", "style", "-f", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = json.loads(done.stdout)
    assert (done.returncode != 0) == bool(findings), done.stderr
    return [f"{f['code']} line {f['line']}: {f['message']}" for f in findings]


def test_hadolint_finds_nothing() -> None:
    assert hadolint(DOCKERFILE) == []


def test_hadolint_fails_a_broken_copy(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    text = DOCKERFILE.read_text().replace("FROM python:3.11-slim-trixie\n", "FROM python:latest\n")
    broken.write_text(text + "RUN pip install requests\n")
    codes = {finding.split()[0] for finding in hadolint(broken)}
    assert {"DL3007", "DL3013"} <= codes  # a :latest base, an unpinned pip install


def _stages() -> list[str]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())  # join continued lines
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    stages: list[str] = []
    for line in lines:
        if line.startswith("FROM "):
            stages.append("")
        stages[-1] += line + "\n"
    return stages


def test_two_stages_hash_checked_and_no_compiler_in_the_runtime() -> None:
    builder, runtime = _stages()
    assert builder.startswith("FROM ") and " AS builder" in builder.splitlines()[0]
    installs = [line for line in builder.splitlines() if "pip install" in line]
    assert "--require-hashes" in installs[0] and "-r requirements.lock" in installs[0]
    assert all("--only-binary=:all:" in line for line in installs if "-r " in line)
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
    assert re.search(r"^USER 10001:10001$", runtime, re.M)
    for stage in (builder, runtime):
        assert not re.search(r"apt-get|apk add|gcc|build-essential", stage)
    assert 'ENTRYPOINT ["google-video"]' in runtime
    assert 'CMD ["api", "--host", "0.0.0.0", "--port", "8000"]' in runtime
