"""checkov (pinned in .venv-policy) over deploy/ — the Kubernetes manifests, the Dockerfile,
secrets — and docker-compose.yml (its secrets: checkov has no Compose framework; the
Compose schema is test_compose.py's). Nothing may fail; each waiver is listed here and
carries its reason where it is made. A broken copy, scanned in the same run, must fail:
one checkov start (~15 s) proves both."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.manifests import K8S, ROOT, policy_tool

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
# (check, file) → where the reason is written.
WAIVERS = {
    ("CKV_DOCKER_2", "Dockerfile"),  # HEALTHCHECK: one image, a probe per process
    ("CKV_K8S_43", "api.yaml"),  # image digest: the release (kustomize images) pins it
    ("CKV_K8S_43", "worker.yaml"),
    ("CKV_K8S_43", "job.yaml"),
    ("CKV_K8S_35", "api.yaml"),  # secrets as env: the settings are environment variables
    ("CKV_K8S_35", "worker.yaml"),
    ("CKV_K8S_35", "job.yaml"),
    ("CKV_SECRET_4", "secret.example.yaml"),  # placeholders in an example
    ("CKV_SECRET_4", "docker-compose.yml"),  # the local stack's own passwords
    ("CKV_SECRET_6", "docker-compose.yml"),
}
# What the broken copy breaks, and the checks that must say so.
EXPECTED_IN_BROKEN = {
    "CKV_DOCKER_3",  # no USER
    "CKV_K8S_14",  # :latest
    "CKV_K8S_22",  # writable root filesystem
    "CKV_K8S_31",  # no seccomp profile
    "CKV_K8S_38",  # service-account token mounted
    "CKV_SECRET_6",  # a password without its waiver
}


def _broken_copy(into: Path) -> None:
    into.mkdir()
    dockerfile = DOCKERFILE.read_text().replace("USER 10001:10001\n", "")
    (into / "Dockerfile").write_text(dockerfile)
    docs = list(yaml.safe_load_all((K8S / "api.yaml").read_text()))
    pod = docs[0]["spec"]["template"]["spec"]
    del pod["securityContext"]["seccompProfile"]
    pod["automountServiceAccountToken"] = True
    pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    pod["containers"][0]["image"] = "google-video:latest"
    (into / "api.yaml").write_text(yaml.safe_dump_all(docs))
    compose = re.sub(r"  # checkov:skip=\S+", "", COMPOSE.read_text())
    (into / "docker-compose.yml").write_text(compose)


def _reports(stdout: str) -> list[dict[str, Any]]:
    """checkov prints one JSON document per scanned root (each one report or a list)."""
    decoder, at, found = json.JSONDecoder(), 0, []
    while at < len(stdout):
        if stdout[at].isspace():
            at += 1
            continue
        doc, at = decoder.raw_decode(stdout, at)
        found += doc if isinstance(doc, list) else [doc]
    return found


def checkov(broken: Path) -> list[tuple[str, str, Path, str]]:
    """(result, check id, file, waiver reason) of every failed or skipped check in deploy/,
    docker-compose.yml and ``broken``, from one checkov run."""
    done = subprocess.run(
        [
            policy_tool("checkov"),
            *("-d", str(ROOT / "deploy"), "-d", str(broken), "-f", str(COMPOSE)),
            *("--framework", "kubernetes", "dockerfile", "secrets"),
            *("--skip-download", "--compact", "-o", "json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: the broken copy fails
    found = []
    for report in _reports(done.stdout):
        assert report["summary"]["parsing_errors"] == 0, report["check_type"]
        for outcome in ("failed_checks", "skipped_checks"):
            for check in report["results"][outcome]:
                reason = check["check_result"].get("suppress_comment") or ""
                path = Path(check["file_abs_path"])
                found.append((outcome, check["check_id"], path, reason))
    return found


def test_checkov_passes_deploy_with_listed_waivers_and_fails_a_broken_copy(
    tmp_path: Path,
) -> None:
    """One test, not three: a module fixture would run checkov once per xdist worker."""
    broken = tmp_path / "broken"
    _broken_copy(broken)
    results = checkov(broken)
    ours = [(o, c, p, r) for o, c, p, r in results if broken not in p.parents]
    failed = [(c, str(p)) for o, c, p, _ in ours if o == "failed_checks"]
    assert failed == []
    skipped = [(c, p.name, r) for o, c, p, r in ours if o == "skipped_checks"]
    assert {(c, name) for c, name, _ in skipped} == WAIVERS
    assert all(len(reason) > 20 for _, _, reason in skipped), skipped
    theirs = {c for o, c, p, _ in results if o == "failed_checks" and broken in p.parents}
    assert theirs >= EXPECTED_IN_BROKEN
