"""What a worker's log lines say about the job they belong to.

arq runs each job in a task of its own and calls ``on_job_start`` in it before logging
the job's start; what that binds (structlog contextvars) is on every line of the job,
arq's own start, retry, failure and end lines included: ``job_id``, ``job_try``, ``job``
and the ``task_id`` (or ``delivery_id``) the job id names. A job binds the task's
``request_id`` (the X-Request-ID of its create, stored on the task) once it has read the
task: the API's lines, the worker's lines and the webhook of one video share that id.
"""

from __future__ import annotations

from typing import Any

import structlog

from core import queue


async def on_job_start(ctx: dict[str, Any]) -> None:
    job_id = str(ctx.get("job_id", ""))
    structlog.contextvars.bind_contextvars(
        job_id=job_id, job_try=ctx.get("job_try"), **queue.described(job_id)
    )


def bind_request(request_id: str | None, **ids: str) -> None:
    """Bind the task's ``request_id`` (when it has one) and ``ids`` to the rest of the job."""
    found = {"request_id": request_id} if request_id else {}
    structlog.contextvars.bind_contextvars(**found, **ids)
