"""``google-video worker`` polling every ``POLL_BUDGET_INTERVAL`` seconds from the submit,
whatever was learned: the fixed-interval reference of ``bench.polling``
(``python -m bench.fixed_poll_worker``).

The patch replaces ``worker.schedule.next_poll_delay`` in this process only, before the
jobs import it; backoff, the deadline and callbacks are the product's own.
"""

from __future__ import annotations

import sys

import worker.schedule
from worker.durations import Distribution
from worker.schedule import Pacing, caught_up


def fixed_delay(
    pacing: Pacing,
    elapsed: float,
    progress: int | None,
    expected: Distribution | None = None,
    late: float = 0.0,
) -> float:
    """The next poll one budget interval after this one was due (a late hop catching up as
    the product's do): polls at T, 2T, ... after the submit."""
    return caught_up(pacing.budget_interval, late)


def main() -> int:
    worker.schedule.next_poll_delay = fixed_delay
    from cli.main import main as cli

    return cli(["worker"])


if __name__ == "__main__":
    sys.exit(main())
