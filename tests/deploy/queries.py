"""The PromQL the deploy files hold (alert rules, the Grafana dashboard, KEDA's triggers)
and the metric names, label names and label values it reads, set against what the code
exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, get_args

import promql_parser
import yaml
from prometheus_client.core import Metric

from core import metrics
from schemas.status import ACTIVE, TERMINAL, DeliveryStatus
from service.metrics import TaskGauge
from worker import alerts
from worker.jobs.reconcile import CLAIM_KINDS
from worker.metrics import QueueGauges
from worker.upstream import errors
from worker.upstream.metrics import outcome_of

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
# The labels Prometheus adds to every series it scrapes (the target's).
TARGET_LABELS = frozenset({"instance", "job"})
# The label a suffix adds to its family's labels.
SUFFIX_LABELS = {"_bucket": frozenset({"le"})}


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


def _families() -> Iterator[tuple[Metric, tuple[str, ...]]]:
    """Each family the code exports, with its label names."""
    for value in vars(metrics).values():
        if hasattr(value, "collect") and hasattr(value, "_name"):
            for family in value.collect():
                yield family, tuple(value._labelnames)
    nothing: Any = None  # collect() reads only the cached values, never these
    for collector in (TaskGauge(nothing), QueueGauges(nothing)):
        for family in collector.collect():
            yield family, tuple(getattr(family, "_labelnames", ()))


def exported_labels() -> dict[str, frozenset[str]]:
    """Every sample name the code can export (suffixes included) → the label names its
    samples carry once scraped (the target's labels included)."""
    return {
        family.name + suffix: frozenset(labels) | SUFFIX_LABELS.get(suffix, frozenset())
        for family, labels in _families()
        for suffix in SUFFIXES[family.type]
    }


def exported_names() -> set[str]:
    """Every sample name the code can export, suffixes included."""
    return set(exported_labels())


def _with_suffixes(family: str) -> list[str]:
    return [family + suffix for suffixes in SUFFIXES.values() for suffix in suffixes]


def _upstream_outcomes() -> set[str]:
    """What ``outcome_of`` makes of no error, of an unknown one and of each upstream error
    class (built without ``__init__``: the match is on the class alone)."""
    classes = [c for c in vars(errors).values() if isinstance(c, type)]
    raised = [c.__new__(c) for c in classes if issubclass(c, BaseException)]
    return {outcome_of(e) for e in [None, Exception(), *raised]}


def closed_values() -> dict[tuple[str, str], frozenset[str]]:
    """(sample name, label) → every value the code can give that label, for the labels
    whose values are a closed set defined in the code."""
    sets: dict[tuple[str, str], Iterable[str]] = {
        ("google_video_tasks", "status"): map(str, ACTIVE),
        ("google_video_tasks_oldest_age_seconds", "status"): map(str, ACTIVE),
        ("google_video_tasks_finished_total", "status"): map(str, TERMINAL),
        ("google_video_task_polls", "status"): map(str, TERMINAL),
        ("google_video_upstream_operator_problems_total", "cause"): get_args(errors.OperatorCause),
        ("google_video_upstream_operator_problems_total", "operation"): alerts.OPERATIONS,
        ("google_video_upstream_requests_total", "outcome"): _upstream_outcomes(),
        ("google_video_reconciler_claims_total", "kind"): CLAIM_KINDS,
        # worker/jobs/deliver.py: "retry" while pending, else the delivery's final status.
        ("google_video_webhook_deliveries_total", "outcome"): {"retry"}
        | {str(s) for s in DeliveryStatus if s != DeliveryStatus.PENDING},
    }
    known = exported_labels()
    found: dict[tuple[str, str], frozenset[str]] = {}
    for (family, label), values in sets.items():
        frozen = frozenset(values)
        names = [n for n in _with_suffixes(family) if n in known]
        assert names, f"no exported metric {family}"
        for name in names:
            assert label in known[name], f"{name} has no label {label}"
            found[name, label] = frozen
    return found


# A regex that is only an alternation of literal values: "a|b_c|d".
LITERALS = re.compile(r"[\w.-]+(\|[\w.-]+)*")


def label_problems(
    expr: str,
    labels: dict[str, frozenset[str]] | None = None,
    values: dict[tuple[str, str], frozenset[str]] | None = None,
) -> list[str]:
    """What in ``expr`` reads a label its metrics do not have (a matcher, ``by``/``without``,
    ``on``/``ignoring``) or a value of a closed set the code never gives (``=``, ``!=``, a
    literal alternation, or a regex matching no value). Empty when all is well; a
    ValueError if ``expr`` does not parse."""
    labels = exported_labels() if labels is None else labels
    values = closed_values() if values is None else values
    problems: list[str] = []

    def available(node: Any) -> frozenset[str]:
        """The label names the result of ``node`` can carry; checks ``node`` on the way."""
        match node:
            case promql_parser.VectorSelector():
                return selector(node)
            case promql_parser.MatrixSelector():
                return selector(node.vector_selector)
            case promql_parser.ParenExpr() | promql_parser.UnaryExpr():
                return available(node.expr)
            case promql_parser.SubqueryExpr():
                return available(node.expr)
            case promql_parser.Call():
                inner = [available(arg) for arg in node.args]
                vectors = frozenset().union(*inner)
                if node.func.name == "histogram_quantile":
                    return vectors - {"le"}
                if node.func.name in {"label_replace", "label_join"}:
                    return vectors | {str(node.args[1]).strip('"')}
                return vectors
            case promql_parser.AggregateExpr():
                inner_labels = available(node.expr)
                if node.param is not None:
                    available(node.param)
                modifier = node.modifier
                if modifier is None:
                    return frozenset()
                grouping = frozenset(modifier.labels)
                missing = grouping - inner_labels
                if missing:
                    problems.append(f"groups by {sorted(missing)}, not labels of {node.expr}")
                if modifier.type == promql_parser.AggModifierType.By:
                    return grouping
                return inner_labels - grouping
            case promql_parser.BinaryExpr():
                left, right = available(node.lhs), available(node.rhs)
                binary: Any = node.modifier
                matching = binary.matching if binary is not None else None
                if matching is not None:
                    # Matched on: on each side (a side without labels, vector(0), aside).
                    for side in (left, right):
                        missing = frozenset(matching.labels) - side if side else frozenset()
                        if missing:
                            problems.append(f"matches on {sorted(missing)}, not labels of {node}")
                    missing = frozenset(binary.group_labels or ()) - (left | right)
                    if missing:
                        problems.append(f"group_left/right {sorted(missing)}: no such labels")
                if str(node.op) == "or":
                    return left | right
                if not right or str(node.op) in {"and", "unless"}:
                    return left if left else right
                if not left:
                    return right
                if (
                    matching is not None
                    and matching.type == promql_parser.LabelModifierType.Include
                ):
                    group = frozenset(binary.group_labels or ())
                    return frozenset(matching.labels) | group
                return left
            case _:
                return frozenset()

    def selector(node: Any) -> frozenset[str]:
        names = metric_names(str(node))
        carried = frozenset().union(*(labels.get(n, frozenset()) for n in names))
        carried |= TARGET_LABELS
        for matcher in node.matchers.matchers:
            if matcher.name == "__name__":
                continue
            if matcher.name not in carried:
                problems.append(f"{node}: no label {matcher.name} on {sorted(names)}")
                continue
            for name in names:
                known = values.get((name, matcher.name))
                if known is not None:
                    problems.extend(
                        f"{node}: {name} never has {matcher.name}={value!r}"
                        for value in unknown_values(matcher, known)
                    )
        return carried

    available(promql_parser.parse(expr))
    return problems


def unknown_values(matcher: Any, known: frozenset[str]) -> list[str]:
    """The values ``matcher`` names that are not in ``known`` (the regex itself when it is
    not a literal alternation and matches none of them)."""
    op = matcher.op
    if op in (promql_parser.MatchOp.Equal, promql_parser.MatchOp.NotEqual):
        return [] if matcher.value in known else [matcher.value]
    if LITERALS.fullmatch(matcher.value):
        return [v for v in matcher.value.split("|") if v not in known]
    pattern = re.compile(matcher.value)
    return [] if any(pattern.fullmatch(v) for v in known) else [matcher.value]
