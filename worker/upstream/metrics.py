"""Each call to the provider, counted and timed (``google_video_upstream_*``)."""

from __future__ import annotations

import time

from core.metrics import UPSTREAM_DURATION, UPSTREAM_REQUESTS
from worker.upstream.errors import (
    AmbiguousSubmitError,
    OperatorProblemError,
    PermanentUpstreamError,
    TaskNotFoundError,
    TransientUpstreamError,
)


def outcome_of(error: BaseException | None) -> str:
    """``ok`` (a 2xx answer), or the kind of error the answer or the transport became."""
    match error:
        case None:
            return "ok"
        case TaskNotFoundError():
            return "not_found"
        case OperatorProblemError():
            return "operator"
        case AmbiguousSubmitError():
            return "ambiguous"
        case TransientUpstreamError():
            return "transient"
        case PermanentUpstreamError():
            return "permanent"
        case _:
            return "error"


def observe(provider: str, operation: str, started: float, error: BaseException | None) -> None:
    """Count one call of ``operation`` begun at ``started`` (``time.perf_counter()``)."""
    UPSTREAM_REQUESTS.labels(provider, operation, outcome_of(error)).inc()
    UPSTREAM_DURATION.labels(provider, operation).observe(time.perf_counter() - started)
