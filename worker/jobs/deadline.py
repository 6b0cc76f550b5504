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


def expired(task: Created, config: RuntimeConfig, now: datetime | None = None) -> bool:
    deadline = task.created_at + timedelta(seconds=config.task_timeout_seconds)
    return (now or utcnow()) >= deadline


def timeout_failure(config: RuntimeConfig) -> tuple[FailureCode, str]:
    """The failure code and message of a task that ran out of time."""
    return FailureCode.TIMEOUT, f"The video did not finish within {config.task_timeout_seconds} s."
