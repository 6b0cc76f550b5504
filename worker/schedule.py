"""When to look at an upstream task next (docs/architecture.md, Polling).

Nothing before the typical minimum; then an interval proportional to the time already
spent (few GETs for long jobs), tightened around the finish that the reported progress
predicts, always within [min_interval, max_interval].
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Pacing:
    first_delay: float
    min_interval: float
    max_interval: float
    retry_base: float
    # > 1 when the upstream will call our notify_hook: polling is then only a safety net
    # for lost callbacks, so it can be that many times sparser.
    callback_factor: float = 1.0
    # The longest wait a server's Retry-After can ask for (seconds).
    retry_after_cap: float = 300.0


def next_poll_delay(pacing: Pacing, elapsed: float, progress: int | None) -> float:
    if elapsed < pacing.first_delay:
        return pacing.first_delay - elapsed
    interval = 0.2 * elapsed
    if progress is not None and 0 < progress < 100:
        remaining = elapsed * (100 - progress) / progress
        interval = min(interval, 0.5 * remaining)
    factor = pacing.callback_factor
    return max(pacing.min_interval * factor, min(pacing.max_interval * factor, interval * factor))


def backoff(pacing: Pacing, attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff (seconds) for the `attempt`-th transient error in a row.

    A server's Retry-After is honoured up to `pacing.retry_after_cap` when it asks for
    longer than the backoff; a missing, zero or negative one leaves the backoff alone (so
    "Retry-After: 0" cannot turn a retry schedule into a burst). The caller still bounds
    the result by the task's deadline.
    """
    delay = min(pacing.max_interval * 4, pacing.retry_base * 2.0 ** min(max(0, attempt - 1), 30))
    if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
        delay = max(delay, min(retry_after, pacing.retry_after_cap))
    return delay
