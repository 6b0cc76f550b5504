"""docker-compose.yml against the Compose specification's JSON schema (the copy
check-jsonschema vendors: `vendor.compose-spec`), and the stack's own rules: image tags are
parameters with pinned defaults, app containers run read-only with a tmpfs /tmp and no
capabilities, every long-running service has a health check (workers on their health
port), workers get their drain time. No Docker engine here: static checks only."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import ROOT
from worker.supervisor import CANCEL_GRACE_SECONDS

COMPOSE = ROOT / "docker-compose.yml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
LONG_RUNNING = {"postgres", "redis", "minio", "simulator", "api", "worker"}
PINNED_DEFAULT = re.compile(r"^\$\{[A-Z_]+:-[^}:]+:(?!latest\})[^}]+\}$")


def schema_errors(path: Path) -> str:
    """check-jsonschema's complaint about ``path`` ("" when it is valid)."""
    done = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "" if done.returncode == 0 else done.stdout + done.stderr


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return float(match[1])


def rule_problems(compose: dict[str, Any]) -> list[str]:
    services: dict[str, Any] = compose["services"]
    problems = []
    for name, service in services.items():
        if not PINNED_DEFAULT.match(service["image"]):
            problems.append(f"{name}: image {service['image']} is not ${{VAR:-pinned:tag}}")
        for needed in service.get("depends_on", {}):
            if needed not in services:
                problems.append(f"{name}: depends on {needed}, which is not a service")
        if name in LONG_RUNNING and "test" not in service.get("healthcheck", {}):
            problems.append(f"{name}: no health check")
        if "build" in service:  # an app container, as the Kubernetes pods run
            hardened = (
                service.get("read_only") is True
                and "/tmp" in service.get("tmpfs", [])
                and service.get("cap_drop") == ["ALL"]
                and "no-new-privileges:true" in service.get("security_opt", [])
            )
            if not hardened:
                problems.append(f"{name}: not read-only with a tmpfs /tmp and no capabilities")
    worker = services["worker"]
    port = worker["environment"]["GOOGLE_VIDEO_WORKER_HEALTH_PORT"]
    if f"127.0.0.1:{port}/readyz" not in " ".join(worker["healthcheck"]["test"]):
        problems.append("worker: the health check does not ask its health port's /readyz")
    drain = float(worker["environment"]["GOOGLE_VIDEO_WORKER_DRAIN_SECONDS"])
    if _seconds(worker["stop_grace_period"]) < drain + CANCEL_GRACE_SECONDS + 1 + 10:
        problems.append("worker: stop_grace_period shorter than its drain")
    return problems


def test_compose_file_matches_the_compose_specification() -> None:
    assert schema_errors(COMPOSE) == ""


def test_the_stack_rules_hold() -> None:
    assert rule_problems(yaml.safe_load(COMPOSE.read_text())) == []


def test_a_broken_copy_fails_the_schema(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE.read_text().replace("    stop_grace_period: 45s\n", "    stop_grace: 45s\n")
    broken.write_text(text)
    assert "stop_grace" in schema_errors(broken)


def _worker_on_api_port(c: dict[str, Any]) -> None:
    c["services"]["worker"]["healthcheck"]["test"][-1] = "urlopen('http://127.0.0.1:8000/readyz')"


def _floating_image(c: dict[str, Any]) -> None:
    c["services"]["minio"]["image"] = "minio/minio:latest"


def _writable_root(c: dict[str, Any]) -> None:
    c["services"]["api"]["read_only"] = False


def _short_grace(c: dict[str, Any]) -> None:
    c["services"]["worker"]["stop_grace_period"] = "10s"


@pytest.mark.parametrize(
    "change", [_worker_on_api_port, _floating_image, _writable_root, _short_grace]
)
def test_a_broken_copy_fails_the_rules(change: Any) -> None:
    compose = copy.deepcopy(yaml.safe_load(COMPOSE.read_text()))
    change(compose)
    assert rule_problems(compose)
