"""Problems only the operator can fix: the upstream refused the service's key or account,
or the configured upstream address does not lead to its API.

They are not the tasks' fault, so no task fails for them while it runs; instead the
operator is told -- at error level, at most once per interval per worker process, with
how many reports that one log stands for -- and the latest problem is kept here, on the
worker's context, for its health and metrics to read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import get_args

import structlog

from core.metrics import OPERATOR_PROBLEMS
from schemas.clock import utcnow
from worker.upstream.errors import OperatorCause, OperatorProblemError

log = structlog.get_logger(__name__)

# Every series at 0 from the start: the alert on them (deploy/prometheus/alerts.yaml) sees an
# increase from 0 on the first refusal, and a dashboard shows 0, not "no data".
OPERATIONS = ("submit", "poll")
for _cause in get_args(OperatorCause):
    for _op in OPERATIONS:
        OPERATOR_PROBLEMS.labels(_cause, _op)

_KEEP_POLLING = "running tasks keep polling until their deadline"
_HINTS: dict[OperatorCause, str] = {
    "auth": f"the upstream refused the service's key: {_KEEP_POLLING}; fix the key",
    "quota": f"the upstream account or key is out of quota: {_KEEP_POLLING}; top it up",
    "endpoint": "the upstream base URL does not lead to its task API (HTTP 404): "
    f"{_KEEP_POLLING}; fix upstream_base_url in the runtime config, or the proxy",
    "key_unreadable": "the stored upstream key cannot be decrypted with this SECRET_KEY "
    "(a database restored under another one?): queued tasks wait; start with the SECRET_KEY "
    "it was stored under (or add it to SECRET_KEY_PREVIOUS), or store the key again",
}


@dataclass(frozen=True)
class OperatorProblem:
    """One refusal: when (UTC), why (`cause` ``auth`` | ``quota`` | ``endpoint`` |
    ``key_unreadable``), on which
    call (`op` ``submit`` | ``poll``), the HTTP status, the provider's own code and text."""

    at: datetime
    cause: OperatorCause
    op: str
    status: int | None
    upstream_code: str | None
    message: str


class OperatorAlerts:
    """The latest operator problem of this worker process, and the rate-limited alert.

    `interval` is in seconds; `clock` a monotonic clock in seconds (tests pass their own).
    Not thread-safe; one per process, owned by the `WorkerContext`.
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._logged_at: float | None = None
        self._unlogged = 0
        self.last: OperatorProblem | None = None
        self.last_ok_at: datetime | None = None
        self.count = 0

    @property
    def active(self) -> bool:
        """True while the latest upstream answer about the key was a refusal."""
        return self.last is not None and (self.last_ok_at is None or self.last_ok_at < self.last.at)

    def report(self, op: str, error: OperatorProblemError, *, task_id: str | None = None) -> bool:
        """Record a refusal; log it at error level unless one was logged within the
        interval. Returns whether this report was logged."""
        self.count += 1
        OPERATOR_PROBLEMS.labels(error.cause, op).inc()
        self.last = OperatorProblem(
            utcnow(), error.cause, op, error.status, error.upstream_code, error.message
        )
        now = self._clock()
        if self._logged_at is not None and now - self._logged_at < self._interval:
            self._unlogged += 1
            return False
        log.error(
            "upstream_operator_problem",
            cause=error.cause,
            op=op,
            status=error.status,
            upstream_code=error.upstream_code,
            message=error.message,
            task_id=task_id,
            unlogged_since_last=self._unlogged,
            hint=_HINTS[error.cause],
        )
        self._logged_at, self._unlogged = now, 0
        return True

    def ok(self) -> None:
        """An upstream call was accepted with the key: any problem is over."""
        self.last_ok_at = utcnow()
