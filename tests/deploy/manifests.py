"""The Kubernetes manifests as `kubectl apply -k` sends them, and what is wrong with them:
kubernetes-validate's strict schemas for built-in kinds, KEDA's CRD schema for its own,
and the service's own rules that no schema or checkov policy states."""

from __future__ import annotations

import copy
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = (K8S, K8S / "migrate")
EXAMPLES = (K8S / "secret.example.yaml",)  # applied by hand, not through kustomize
POLICY_BIN = ROOT / ".venv-policy" / "bin"
# The oldest Kubernetes the manifests claim (PodDisruptionBudget's
# unhealthyPodEvictionPolicy is GA there) and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
SCHEMAS = Path(__file__).parent / "schemas"
Doc = dict[str, Any]


def policy_tool(name: str) -> Path:
    """A tool of .venv-policy (checkov, kubectl); fails the test if it is not installed."""
    path = POLICY_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make policy-deps` (`make test` does)")
    return path


def render(directory: Path) -> list[Doc]:
    """``kubectl kustomize directory``: the documents `kubectl apply -k` would send."""
    done = subprocess.run(
        [policy_tool("kubectl"), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def load(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def name_of(doc: Doc) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def _strict(schema: Any) -> Any:
    """A structural CRD schema as the API server applies it with field validation Strict:
    a field the schema does not name is an error (it would otherwise be pruned silently)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _crd_validators() -> dict[tuple[str, str], jsonschema.Draft202012Validator]:
    found = {}
    for path in sorted(SCHEMAS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        schema = _strict(crd["openAPIV3Schema"])
        key = (f"{crd['group']}/{crd['version']}", crd["kind"])
        found[key] = jsonschema.Draft202012Validator(schema)
    return found


CRDS = _crd_validators()


def schema_problems(doc: Doc, version: str) -> list[str]:
    """What the API server (``version``) would refuse in ``doc``, field validation Strict."""
    custom = CRDS.get((doc["apiVersion"], doc["kind"]))
    if custom is not None:
        return [
            f"{name_of(doc)}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in custom.iter_errors(doc)
        ]
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except SchemaNotFoundError:
        return [f"{name_of(doc)}: no schema for {doc['apiVersion']} (vendor its CRD schema)"]
    except ValidationError as error:
        return [f"{name_of(doc)}: {error.message}"]
    return []


def pod_specs(docs: list[Doc]) -> dict[str, Doc]:
    """The pod template of each workload, by workload."""
    workloads = [d for d in docs if "template" in d.get("spec", {})]
    return {name_of(d): d["spec"]["template"]["spec"] for d in workloads}


def release_image() -> str:
    component = yaml.safe_load((K8S / "release" / "kustomization.yaml").read_text())
    (image,) = component["images"]
    return f"{image['newName']}:{image['newTag']}"


def project_version() -> str:
    version: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


def rule_problems(docs: list[Doc]) -> list[str]:
    """The service's own rules over rendered ``docs`` (one kustomization's output)."""
    problems = []
    image = release_image()
    for workload, pod in pod_specs(docs).items():
        tmp = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in pod["containers"]:
            where = f"{workload} {container['name']}"
            if container["image"] != image:
                problems.append(f"{where}: image {container['image']}, not the release {image}")
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            if mounts.get("/tmp") not in tmp:
                problems.append(f"{where}: no emptyDir at /tmp (the root filesystem is read-only)")
    for doc in docs:
        worker = doc["kind"] == "Deployment" and doc["metadata"]["name"].endswith("-worker")
        if worker and "replicas" in doc["spec"]:
            problems.append(f"{name_of(doc)}: sets replicas, which KEDA owns")
        if doc["kind"] == "ScaledObject":
            problems += _scaling_problems(doc, docs)
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        if not any(_selects(b["spec"]["selector"], labels) for b in budgets):
            problems.append(f"{name_of(deployment)}: no PodDisruptionBudget")
    return problems


def _scaling_problems(scaled: Doc, docs: list[Doc]) -> list[str]:
    """What KEDA's admission webhook or its prometheus scaler would refuse, and triggers
    other than prometheus (worker.yaml says why not the redis scaler)."""
    problems = []
    target = scaled["spec"]["scaleTargetRef"]["name"]
    if not any(d["kind"] == "Deployment" and d["metadata"]["name"] == target for d in docs):
        problems.append(f"{name_of(scaled)}: scales {target}, which is not here")
    for trigger in scaled["spec"]["triggers"]:
        where = f"{name_of(scaled)} trigger {trigger.get('name')}"
        if trigger["type"] != "prometheus":
            problems.append(f"{where}: {trigger['type']}, not prometheus")
            continue
        meta = trigger["metadata"]
        missing = {"serverAddress", "query", "threshold"} - set(meta)
        if missing:
            problems.append(f"{where}: no {sorted(missing)}")
        try:
            float(meta.get("threshold", ""))
        except ValueError:
            problems.append(f"{where}: threshold {meta.get('threshold')!r} is not a number")
    return problems


def _selects(selector: Doc, labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def mutated(docs: list[Doc], kind: str, change: Any) -> list[Doc]:
    """A deep copy of ``docs`` where ``change(doc)`` was applied to each doc of ``kind``."""
    out = copy.deepcopy(docs)
    for doc in out:
        if doc["kind"] == kind:
            change(doc)
    return out
