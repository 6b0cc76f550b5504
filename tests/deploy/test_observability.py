"""The alert rules (deploy/prometheus/alerts.yaml), the Grafana dashboard
(deploy/grafana/google-video.json) and KEDA's queries: well formed, every expression parses
as PromQL, every metric they read is one the code exports, every label they select, group or
match on is one of its labels, and every value of a closed set (task statuses, operator
causes, outcomes) is one the code gives (the names after a real run:
tests/integration/e2e/test_metrics.py)."""

from __future__ import annotations

import json
from pathlib import Path

import promql_parser
import pytest
import yaml

from tests.deploy.queries import (
    ALERTS,
    DASHBOARD,
    WORKER,
    alert_queries,
    all_queries,
    closed_values,
    exported_labels,
    exported_names,
    keda_queries,
    label_problems,
    metric_names,
    referenced_names,
)

EXPORTED = exported_names()
LABELS = exported_labels()
VALUES = closed_values()
QUERIES = all_queries()
RULES = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
# What issue 12 asks the rules to watch, by the alert that does.
REQUIRED = {
    "GoogleVideoQueueBacklog",  # due jobs waiting (oldest due age)
    "GoogleVideoQueueBacklogGrowing",  # due jobs growing
    "GoogleVideoCompletionLagHigh",
    "GoogleVideoUpstreamRefused",  # upstream auth / quota
    "GoogleVideoWebhookBacklog",
    "GoogleVideoTasksStuck",  # submitting / storing
    "GoogleVideoReconcilerSilent",
    "GoogleVideoCreditsHeldWithoutTasks",
    "GoogleVideoHttp5xx",
}


@pytest.mark.parametrize("where", QUERIES)
def test_query_parses_and_reads_only_exported_metrics(where: str) -> None:
    names = metric_names(QUERIES[where])
    assert names, "a query that reads no metric"
    assert names <= EXPORTED, f"not exported by the code: {sorted(names - EXPORTED)}"


def test_the_checks_catch_a_wrong_name_and_bad_promql() -> None:
    assert metric_names("max(google_video_queue_job_due) > 1") - EXPORTED
    with pytest.raises(ValueError):
        metric_names("sum(rate(google_video_http_requests_total[5m])")


@pytest.mark.parametrize("where", QUERIES)
def test_query_reads_only_labels_and_values_the_code_gives(where: str) -> None:
    assert label_problems(QUERIES[where], LABELS, VALUES) == []


def _mutated(source: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = source.read_text()
    assert old in text, old
    copy = tmp_path / source.name
    copy.write_text(text.replace(old, new))
    return copy


def test_a_wrong_label_in_keda_is_caught(tmp_path: Path) -> None:
    """``state`` for ``status``: with ``or vector(0)`` the trigger would silently read 0."""
    copy = _mutated(WORKER, tmp_path, 'status=~"submitting', 'state=~"submitting')
    problems = label_problems(keda_queries(copy)["tasks-in-flight"], LABELS, VALUES)
    assert problems and "no label state" in problems[0]


def test_a_wrong_label_and_grouping_in_an_alert_are_caught(tmp_path: Path) -> None:
    old = "sum by (cause) (increase(google_video_upstream_operator_problems_total[5m]))"
    new = (
        'sum by (reason) (increase(google_video_upstream_operator_problems_total{kind="auth"}[5m]))'
    )
    copy = _mutated(ALERTS, tmp_path, old, new)
    problems = label_problems(alert_queries(copy)["GoogleVideoUpstreamRefused"], LABELS, VALUES)
    assert len(problems) == 2
    assert "no label kind" in problems[0] and "groups by ['reason']" in problems[1]


def test_a_misspelt_status_in_an_alert_is_caught(tmp_path: Path) -> None:
    copy = _mutated(ALERTS, tmp_path, 'status=~"submitting|storing"', 'status=~"submiting|storing"')
    problems = label_problems(alert_queries(copy)["GoogleVideoTasksStuck"], LABELS, VALUES)
    assert len(problems) == 1 and "status='submiting'" in problems[0]


@pytest.mark.parametrize(
    "expr",
    [
        'google_video_tasks{status="done"}',
        'google_video_tasks{status!="completed"}',  # final tasks are never in the gauge
        'google_video_tasks{status=~"z.*"}',  # matches no status
        "sum without (stat) (google_video_tasks)",
        "max by (status) (sum by (instance) (google_video_tasks))",
        "google_video_credits_held and on (model) google_video_tasks",
        'google_video_upstream_requests_total{outcome="failed"}',
        'google_video_task_polls_bucket{status="running"}',
    ],
)
def test_the_label_checks_catch(expr: str) -> None:
    assert label_problems(expr, LABELS, VALUES), expr


def test_the_label_checks_pass_a_regex_matching_a_status() -> None:
    expr = 'max by (status, instance) (google_video_tasks{status=~"sub.*ing"}) or vector(0)'
    assert label_problems(expr, LABELS, VALUES) == []


def test_every_required_alert_exists_once() -> None:
    names = [rule["alert"] for rule in RULES]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED
    assert set(alert_queries()) == set(names)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r["alert"])
def test_alert_rule_is_complete(rule: dict[str, object]) -> None:
    assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
    promql_parser.parse_duration(str(rule["for"]))
    labels = rule["labels"]
    assert isinstance(labels, dict) and labels["severity"] in {"warning", "critical"}
    annotations = rule["annotations"]
    assert isinstance(annotations, dict) and set(annotations) == {"summary", "runbook"}
    assert all(isinstance(text, str) and len(text) > 20 for text in annotations.values())


def test_dashboard_is_a_grafana_dashboard_over_one_prometheus_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "google-video" and dashboard["schemaVersion"] >= 36
    variables = dashboard["templating"]["list"]
    assert [(v["name"], v["type"], v["query"]) for v in variables] == [
        ("datasource", "datasource", "prometheus")
    ]
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    graphs = [p for p in panels if p["type"] != "row"]
    assert len(graphs) >= 15
    for panel in graphs:
        assert panel["targets"] and panel["description"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]


def test_dashboard_and_alerts_cover_the_backlog_signals() -> None:
    """The gauges an SRE looks at first are on the dashboard and alerted on."""
    shown = referenced_names()
    for name in (
        "google_video_queue_jobs_due",
        "google_video_queue_oldest_due_job_age_seconds",
        "google_video_tasks",
        "google_video_tasks_oldest_age_seconds",
        "google_video_completion_lag_seconds_bucket",
        "google_video_upstream_operator_problems_total",
        "google_video_webhook_deliveries_pending",
        "google_video_reconciler_runs_total",
        "google_video_credits_held",
        "google_video_http_requests_total",
    ):
        assert name in shown, name
