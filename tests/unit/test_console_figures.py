"""The pure parts of the console's data: timeline titles from recorded activity, the
lag quantiles and the error ratio."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.health_numbers import RecentFigures, quantile
from core.repo.activity import Activity, Calls
from core.repo.timeline import activity_entry
from schemas.status import ActivityKind

AT = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "detail", "title", "ok"),
    [
        (ActivityKind.STATUS, {"status": "running"}, "running", None),
        (
            ActivityKind.STATUS,
            {"status": "failed", "error_code": "upstream_failed"},
            "failed: upstream_failed",
            False,
        ),
        (
            ActivityKind.SUBMIT,
            {"route": "gateway", "latency_ms": 120, "upstream_task_id": "t-1"},
            "submit to gateway: t-1 (120 ms)",
            True,
        ),
        (
            ActivityKind.SUBMIT,
            {"route": "gemini", "latency_ms": 9, "error": "auth"},
            "submit to gemini failed: auth (9 ms)",
            False,
        ),
        (
            ActivityKind.POLL,
            {"latency_ms": 180, "state": "running", "progress": 42},
            "poll: running 42% (180 ms)",
            True,
        ),
        (
            ActivityKind.POLL,
            {"latency_ms": 2000, "error": "timeout"},
            "poll: timeout (2000 ms)",
            False,
        ),
        (ActivityKind.POLL, {"state": "queued"}, "poll: queued", True),
    ],
)
def test_titles_say_what_was_recorded(
    kind: ActivityKind, detail: dict[str, object], title: str, ok: bool | None
) -> None:
    entry = activity_entry(Activity(AT, kind, dict(detail)))
    assert (entry.source, entry.title, entry.ok, entry.at) == (str(kind), title, ok, AT)
    assert entry.detail == detail


def test_quantiles_interpolate_between_ranks() -> None:
    assert quantile([3.0], 0.95) == 3.0
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    values = [float(n) for n in range(1, 101)]
    assert quantile(values, 0.95) == pytest.approx(95.05)
    assert quantile(values, 0.0) == 1.0 and quantile(values, 1.0) == 100.0


def test_error_ratio_per_provider_and_overall() -> None:
    recent = RecentFigures({}, 0, {"gateway": Calls(10, 1), "gemini": Calls(30, 3)})
    assert recent.error_ratio("gateway") == 0.1
    assert recent.error_ratio() == 0.1
    assert recent.error_ratio("simulator") is None
    assert RecentFigures({}, 0, {}).error_ratio() is None
