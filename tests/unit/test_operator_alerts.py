"""The operator is told about a refused key or account once per interval, and the latest
problem is kept for the worker's health and metrics."""

from structlog.testing import capture_logs

from worker.alerts import OperatorAlerts
from worker.upstream import OperatorProblemError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _quota() -> OperatorProblemError:
    return OperatorProblemError(
        "quota", "该令牌额度已用尽", upstream_code="new_api_error", status=401
    )


def test_one_error_log_per_interval_however_many_reports():
    clock = Clock()
    alerts = OperatorAlerts(60.0, clock)

    with capture_logs() as logs:
        logged = [alerts.report("poll", _quota(), task_id=f"t{n}") for n in range(50)]
        clock.now += 59.9
        logged.append(alerts.report("poll", _quota()))
        clock.now += 0.2
        logged.append(alerts.report("submit", _quota()))

    assert logged == [True] + [False] * 50 + [True]
    errors = [entry for entry in logs if entry["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["upstream_operator_problem"] * 2
    assert errors[0]["cause"] == "quota" and errors[0]["status"] == 401
    assert errors[1]["unlogged_since_last"] == 50
    assert alerts.count == 52


def test_the_latest_problem_is_kept_and_cleared_by_an_accepted_call():
    alerts = OperatorAlerts(60.0, Clock())
    assert (alerts.last, alerts.active) == (None, False)

    alerts.report("poll", _quota())

    assert alerts.active
    assert alerts.last is not None
    assert (alerts.last.cause, alerts.last.op, alerts.last.upstream_code) == (
        "quota",
        "poll",
        "new_api_error",
    )
    alerts.ok()
    assert not alerts.active and alerts.last is not None  # history stays readable


def test_the_alert_says_what_to_fix_for_each_cause():
    wrong_address = OperatorProblemError("endpoint", "HTTP 404 Not Found", status=404)
    with capture_logs() as logs:
        OperatorAlerts(60.0, Clock()).report("poll", wrong_address)
        OperatorAlerts(60.0, Clock()).report("poll", _quota())

    hints = [entry["hint"] for entry in logs if entry["event"] == "upstream_operator_problem"]
    assert "upstream_base_url" in hints[0] and "quota" in hints[1]
