"""Every exported metric follows Prometheus's naming conventions: the service prefix,
``_total`` on counters only, a base unit on histograms, no unbounded labels."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.core import Metric

from core import metrics
from service.metrics import TaskGauge
from worker.metrics import QueueGauges

UNITS = ("_seconds", "_bytes")
# Histograms of a count of things, which has no unit.
COUNTS = {"google_video_task_polls"}
# Labels whose values would grow without bound (one series per video, client or path).
UNBOUNDED = {"path", "task_id", "video_id", "client_id", "user", "url", "id"}


def families() -> Iterator[Metric]:
    for value in vars(metrics).values():
        if hasattr(value, "collect") and hasattr(value, "_name"):
            yield from value.collect()
    nothing: Any = None  # collect() reads only the cached values, never these
    yield from TaskGauge(nothing).collect()
    yield from QueueGauges(nothing).collect()


FAMILIES = sorted(families(), key=lambda m: m.name)


def test_every_module_metric_is_seen() -> None:
    assert len(FAMILIES) >= 16


@pytest.mark.parametrize("family", FAMILIES, ids=lambda m: m.name)
def test_name_follows_the_conventions(family: Metric) -> None:
    assert family.name.startswith("google_video_")
    assert family.name == family.name.lower() and "__" not in family.name
    assert family.documentation
    if family.type == "counter":
        assert not family.name.endswith("_total")  # the client appends it to the samples
        assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
    else:
        assert not family.name.endswith("_total")
    if family.type == "histogram":
        assert family.name.endswith(UNITS) or family.name in COUNTS
    labels = {label for s in family.samples for label in s.labels}
    assert not labels & UNBOUNDED


def test_labelled_metrics_declare_no_unbounded_label() -> None:
    for value in vars(metrics).values():
        names = set(getattr(value, "_labelnames", ()))
        assert not names & UNBOUNDED, value
