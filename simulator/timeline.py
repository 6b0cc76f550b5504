"""Pure functions: how long a task runs and where it stands at a given instant."""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from simulator.directives import Script

Clock = Callable[[], float]
"""Returns the current time as Unix seconds (``time.time`` in production)."""

# A lognormal with median 150 s: about 90 % of jobs take 1 to 5 minutes, as Veo does.
MEDIAN_SECONDS = 150.0
SIGMA = 0.45
MIN_SECONDS = 30.0
MAX_SECONDS = 360.0

# Fractions of the duration at which the task leaves NOT_START and SUBMITTED.
NOT_START_END = 0.03
SUBMITTED_END = 0.08


class Phase(StrEnum):
    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"

    @property
    def finished(self) -> bool:
        return self in (Phase.SUCCESS, Phase.FAILURE)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Where a task stands at one instant; all times are Unix seconds."""

    phase: Phase
    percent: int
    started_at: float | None
    finished_at: float | None
    changed_at: float


def sample_duration(script: Script, rng: random.Random, time_scale: float) -> float:
    """The scaled submit-to-finish duration: the scripted one, else a realistic draw."""
    if script.duration is not None:
        return script.duration * time_scale
    drawn = rng.lognormvariate(math.log(MEDIAN_SECONDS), SIGMA)
    return min(max(drawn, MIN_SECONDS), MAX_SECONDS) * time_scale


def snapshot_at(submitted_at: float, duration: float, failed: bool, now: float) -> Snapshot:
    """The state at ``now`` of a task submitted at ``submitted_at`` that runs ``duration``."""
    started_at = submitted_at + SUBMITTED_END * duration
    finished_at = submitted_at + duration
    if now >= finished_at:
        phase = Phase.FAILURE if failed else Phase.SUCCESS
        return Snapshot(phase, 100, started_at, finished_at, finished_at)
    queued_at = submitted_at + NOT_START_END * duration
    if now < queued_at:
        return Snapshot(Phase.NOT_START, 0, None, None, submitted_at)
    if now < started_at:
        return Snapshot(Phase.SUBMITTED, 0, None, None, queued_at)
    percent = min(int((now - started_at) / (finished_at - started_at) * 100), 99)
    return Snapshot(Phase.IN_PROGRESS, percent, started_at, None, started_at)
