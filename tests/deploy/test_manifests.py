"""deploy/k8s, rendered by kustomize as `kubectl apply -k` would send it: strict schemas
(kubernetes-validate for built-in kinds, KEDA 2.16's CRD schema for the ScaledObject), the
service's own rules (release image, /tmp, KEDA owns the worker count, budgets), and each
check shown failing on a broken copy. checkov runs in test_checkov.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.manifests import (
    EXAMPLES,
    K8S,
    KUBERNETES_VERSIONS,
    Doc,
    load,
    mutated,
    name_of,
    pod_specs,
    project_version,
    release_image,
    render,
    rule_problems,
    schema_problems,
)
from worker.supervisor import CANCEL_GRACE_SECONDS


@pytest.fixture(scope="module")
def app() -> list[Doc]:
    return render(K8S)


@pytest.fixture(scope="module")
def migrate() -> list[Doc]:
    return render(K8S / "migrate")


def test_kustomizations_render_what_the_service_needs(app: list[Doc], migrate: list[Doc]) -> None:
    assert {name_of(d) for d in app} == {
        "Namespace/google-video",
        "NetworkPolicy/google-video-default-deny",
        "NetworkPolicy/google-video-api",
        "NetworkPolicy/google-video-worker",
        "Deployment/google-video-api",
        "Service/google-video-api",
        "PodDisruptionBudget/google-video-api",
        "Deployment/google-video-worker",
        "PodDisruptionBudget/google-video-worker",
        "ScaledObject/google-video-worker",
    }
    assert {name_of(d) for d in migrate} == {
        "Job/google-video-migrate",
        "NetworkPolicy/google-video-migrate",
    }
    namespaced = [d for d in app + migrate if d["kind"] != "Namespace"]
    assert {d["metadata"]["namespace"] for d in namespaced} == {"google-video"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_passes_the_strict_schema(
    app: list[Doc], migrate: list[Doc], version: str
) -> None:
    examples = [doc for path in EXAMPLES for doc in load(path)]
    assert [p for doc in app + migrate + examples for p in schema_problems(doc, version)] == []


def test_the_service_rules_hold(app: list[Doc], migrate: list[Doc]) -> None:
    assert rule_problems(app) == []
    assert rule_problems(migrate) == []


def test_the_release_is_this_tree_and_no_manifest_floats() -> None:
    assert release_image().endswith(f":{project_version()}")
    raw = [doc for path in sorted(K8S.rglob("*.yaml")) for doc in load(path) if "spec" in doc]
    images = [c["image"] for pod in pod_specs(raw).values() for c in pod["containers"]]
    assert images and all(":" in i and not i.endswith(":latest") for i in images), images


def test_worker_grace_period_covers_its_drain(app: list[Doc]) -> None:
    """SIGKILL must not cut a drain short: drain + the cancelled jobs' grace + deleting the
    health key (1 s) + 10 s for closing the pools, within terminationGracePeriodSeconds."""
    (worker,) = [d for d in app if name_of(d) == "Deployment/google-video-worker"]
    pod = worker["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    drain = float(env["GOOGLE_VIDEO_WORKER_DRAIN_SECONDS"])
    assert drain + CANCEL_GRACE_SECONDS + 1 + 10 <= pod["terminationGracePeriodSeconds"]


def _container(doc: Doc) -> Doc:
    container: Doc = doc["spec"]["template"]["spec"]["containers"][0]
    return container


def _typo(doc: Doc) -> None:
    _container(doc)["securityContext"]["readOnlyRootFileSystem"] = True


def _wrong_type(doc: Doc) -> None:
    _container(doc)["securityContext"]["runAsNonRoot"] = "yes"


def _worker_replicas(doc: Doc) -> None:
    if doc["metadata"]["name"].endswith("-worker"):
        doc["spec"]["replicas"] = 2


def _no_tmp(doc: Doc) -> None:
    _container(doc)["volumeMounts"] = []


def _latest(doc: Doc) -> None:
    _container(doc)["image"] = "google-video:latest"


def _redis_trigger(doc: Doc) -> None:
    redis = {"type": "redis", "metadata": {"listName": "arq:queue", "listLength": "500"}}
    doc["spec"]["triggers"].append(redis)


def _numeric_threshold(doc: Doc) -> None:
    doc["spec"]["triggers"][0]["metadata"]["threshold"] = 10


def _unknown_keda_field(doc: Doc) -> None:
    doc["spec"]["replicas"] = 2


def _no_target(doc: Doc) -> None:
    del doc["spec"]["scaleTargetRef"]


def _no_budget(doc: Doc) -> None:
    doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] = "nothing"


SCHEMA, RULES = "schema", "rules"
BREAKAGES: list[tuple[str, str, Any, str]] = [
    ("a misspelled field", "Deployment", _typo, SCHEMA),
    ("a string for a boolean", "Deployment", _wrong_type, SCHEMA),
    ("an unknown ScaledObject field", "ScaledObject", _unknown_keda_field, SCHEMA),
    ("a number for a KEDA metadata string", "ScaledObject", _numeric_threshold, SCHEMA),
    ("a ScaledObject without its target", "ScaledObject", _no_target, SCHEMA),
    ("replicas on the worker Deployment", "Deployment", _worker_replicas, RULES),
    ("no /tmp under a read-only root", "Deployment", _no_tmp, RULES),
    ("an image that is not the release", "Deployment", _latest, RULES),
    ("the ZCARD redis trigger", "ScaledObject", _redis_trigger, RULES),
    ("a budget that selects nothing", "PodDisruptionBudget", _no_budget, RULES),
]

IDS = [b[0] for b in BREAKAGES]


@pytest.mark.parametrize(("what", "kind", "change", "check"), BREAKAGES, ids=IDS)
def test_a_broken_copy_fails(app: list[Doc], what: str, kind: str, change: Any, check: str) -> None:
    broken = mutated(app, kind, change)
    if check == SCHEMA:
        found = [p for doc in broken for p in schema_problems(doc, KUBERNETES_VERSIONS[0])]
    else:
        found = rule_problems(broken)
    assert found, f"{what} went unnoticed"


def test_vendored_crd_schemas_say_where_they_come_from() -> None:
    for path in (Path(__file__).parent / "schemas").glob("*.yaml"):
        head = path.read_text().split("openAPIV3Schema:")[0]
        assert "Source: KEDA" in head and "commit" in head and "keda_version:" in head, path
