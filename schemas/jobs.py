"""Job names and deterministic ARQ job ids shared by the API (enqueue) and workers."""

from __future__ import annotations

SUBMIT = "submit_task"
POLL = "poll_task"
STORE = "store_task"
RECONCILE = "reconcile"
PURGE_IDEMPOTENCY = "purge_idempotency"


def submit_job_id(task_id: str) -> str:
    return f"submit:{task_id}"


def poll_job_id(task_id: str, attempt: int) -> str:
    return f"poll:{task_id}:{attempt}"


def store_job_id(task_id: str) -> str:
    return f"store:{task_id}"


DELIVER = "deliver_webhook"


def deliver_job_id(delivery_id: str, attempt: int) -> str:
    return f"deliver:{delivery_id}:{attempt}"
