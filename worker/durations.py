"""How long a model's videos take upstream, learned by this worker, and the progress a
running task shows when its provider reports none (the Gemini API's operations have no
progress field).

Each finished task teaches its submit-to-finish time (an exponentially weighted mean per
model); before any has, a model is expected to take `DEFAULT_SECONDS` (Google quotes 11 s
to 6 minutes for Veo). The shown progress grows linearly to `AT_EXPECTED` % at the
expected time and then creeps towards 99 %: never 100 % before the video is there.
"""

from __future__ import annotations

import math

DEFAULT_SECONDS = 120.0
AT_EXPECTED = 90
HIGHEST = 99
# The weight of the newest observation; about the last ten tasks count.
WEIGHT = 0.2
# Observations outside this range are no video's real duration (a clock jump, a bug).
_PLAUSIBLE = (1.0, 24 * 3600.0)


class LearnedDurations:
    """Per-model expected upstream duration, in seconds, learned from finished tasks."""

    def __init__(self, default: float = DEFAULT_SECONDS) -> None:
        self._default = default
        self._seconds: dict[str, float] = {}

    def expected(self, model: str) -> float:
        return self._seconds.get(model, self._default)

    def learn(self, model: str, seconds: float) -> None:
        """Take one finished task's submit-to-finish time into `model`'s expectation."""
        if not (math.isfinite(seconds) and _PLAUSIBLE[0] <= seconds <= _PLAUSIBLE[1]):
            return
        known = self._seconds.get(model)
        self._seconds[model] = seconds if known is None else known + WEIGHT * (seconds - known)

    def progress(self, model: str, elapsed: float) -> int:
        """The percentage to show `elapsed` seconds after the submit: 0 to `HIGHEST`."""
        if not math.isfinite(elapsed) or elapsed <= 0:
            return 0
        expected = self.expected(model)
        if elapsed <= expected:
            return int(AT_EXPECTED * elapsed / expected)
        late = (elapsed - expected) / expected
        return min(HIGHEST, AT_EXPECTED + int((HIGHEST - AT_EXPECTED) * (1 - math.exp(-late))))
