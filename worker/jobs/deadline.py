"""The task deadline: ``task_timeout_seconds`` from the runtime config, counted from create."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from schemas.clock import utcnow
from schemas.config import RuntimeConfig
from schemas.problems import FailureCode


class Created(Protocol):
    @property
    def created_at(self) -> datetime: ...


def deadline(task: Created, config: RuntimeConfig) -> datetime:
    """When the task times out."""
    return task.created_at + timedelta(seconds=config.task_timeout_seconds)


def expired(task: Created, config: RuntimeConfig, now: datetime | None = None) -> bool:
    return (now or utcnow()) >= deadline(task, config)


def seconds_left(task: Created, config: RuntimeConfig, now: datetime | None = None) -> float:
    """Seconds until the deadline (0.0 once it has passed)."""
    return max(0.0, (deadline(task, config) - (now or utcnow())).total_seconds())


def timeout_failure(config: RuntimeConfig) -> tuple[FailureCode, str]:
    """The failure code and message of a task that ran out of time."""
    return FailureCode.TIMEOUT, f"The video did not finish within {config.task_timeout_seconds} s."
