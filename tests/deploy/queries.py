"""The PromQL the deploy files hold (alert rules, the Grafana dashboard, KEDA's triggers)
and the metric names it reads, set against the names the code exports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import yaml
from prometheus_client.core import Metric

from core import metrics
from service.metrics import TaskGauge
from worker.metrics import QueueGauges

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "google-video.json"
WORKER = ROOT / "deploy" / "k8s" / "worker.yaml"

# Grafana's built-in variables, as Prometheus would see them substituted.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
# The suffixes a family's samples carry, by type (prometheus-client's exposition).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "gauge": ("",),
}


def alert_queries(path: Path = ALERTS) -> dict[str, str]:
    """Alert name → its expression."""
    groups = yaml.safe_load(path.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def dashboard_queries(path: Path = DASHBOARD) -> dict[str, str]:
    """``panel title/refId`` → its expression, Grafana's variables substituted."""
    found = {}
    for panel in json.loads(path.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            found[f"{panel['title']}/{target['refId']}"] = expr
    return found


def keda_queries(path: Path = WORKER) -> dict[str, str]:
    """Trigger name → query, of every prometheus trigger of the ScaledObjects in ``path``."""
    return {
        trigger["name"]: trigger["metadata"]["query"]
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc["kind"] == "ScaledObject"
        for trigger in doc["spec"]["triggers"]
        if trigger["type"] == "prometheus"
    }


def all_queries() -> dict[str, str]:
    return {
        **{f"alert {k}": v for k, v in alert_queries().items()},
        **{f"dashboard {k}": v for k, v in dashboard_queries().items()},
        **{f"keda {k}": v for k, v in keda_queries().items()},
    }


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects (a ValueError if it does not parse)."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__":
                    names.add(matcher.value)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def referenced_names() -> set[str]:
    """Every metric name the deploy files' queries read."""
    return {name for expr in all_queries().values() for name in metric_names(expr)}


def _families() -> Iterator[Metric]:
    for value in vars(metrics).values():
        if hasattr(value, "collect") and hasattr(value, "_name"):
            yield from value.collect()
    nothing: Any = None  # collect() reads only the cached values, never these
    yield from TaskGauge(nothing).collect()
    yield from QueueGauges(nothing).collect()


def exported_names() -> set[str]:
    """Every sample name the code can export, suffixes included."""
    return {f.name + suffix for f in _families() for suffix in SUFFIXES[f.type]}
