"""poll_task: one look at the upstream task; reschedules itself until it ends.

Each hop carries the poll counter it expects; the conditional update on ``polls`` makes
a duplicate or late hop a no-op, so at most one chain of polls lives per task.
"""

from __future__ import annotations

from typing import Any

import structlog

from core import queue, settlement
from core.db import autocommit
from core.repo import tasks
from core.repo.tasks import PollView
from schemas.clock import utcnow
from schemas.problems import FailureCode
from schemas.status import TaskStatus
from worker.context import WorkerContext, wctx
from worker.jobs.deadline import expired, timeout_failure
from worker.jobs.finishing import finish
from worker.jobs.pacing import due_after, pacing
from worker.schedule import backoff, next_poll_delay
from worker.upstream import (
    PermanentUpstreamError,
    PollResult,
    TaskNotFoundError,
    TransientUpstreamError,
    UpstreamState,
)

log = structlog.get_logger(__name__)


async def poll_task(ctx: dict[str, Any], task_id: str, attempt: int) -> str:
    context = wctx(ctx)
    async with autocommit(context.engine) as conn:
        task = await tasks.load_for_poll(conn, task_id)
    if task is None or task.status != TaskStatus.RUNNING or task.polls != attempt:
        return "skipped"
    if task.upstream_task_id is None:  # a running task always has one; never poll None
        message = "The running task has no upstream task id."
        return await _fail(context, task_id, FailureCode.UPSTREAM_TASK_LOST, message)
    config = await context.config.get()
    spec = config.model(task.model)
    try:
        async with context.upstreams.lease(config, spec) as upstream:
            result = await upstream.poll(task.upstream_task_id)
    except TaskNotFoundError as exc:
        return await _fail(context, task_id, FailureCode.UPSTREAM_TASK_LOST, exc.message)
    except PermanentUpstreamError as exc:
        return await _fail(context, task_id, FailureCode.UPSTREAM_REJECTED, exc.message)
    except TransientUpstreamError as exc:
        if expired(task, config):
            return await _fail(context, task_id, *timeout_failure(config))
        delay = backoff(pacing(context), _streak(task) + 1, exc.retry_after)
        log.info("poll_transient", task_id=task_id, code=exc.code, delay=round(delay, 2))
        return await _reschedule(
            context, task, delay, {"errors": _streak(task) + 1, "last_error": exc.code}
        )
    if result.state == UpstreamState.FAILED:
        return await _fail(
            context,
            task_id,
            FailureCode.UPSTREAM_FAILED,
            result.fail_reason or f"upstream status {result.raw_status}",
            result,
        )
    if result.state == UpstreamState.SUCCEEDED and result.video_url:
        return await _finished(context, task, result)
    if expired(task, config):
        code, message = timeout_failure(config)
        if result.state == UpstreamState.SUCCEEDED:
            code, message = (
                FailureCode.UPSTREAM_NO_VIDEO,
                "Upstream reported success but gave no video URL.",
            )
        return await _fail(context, task_id, code, message, result)
    elapsed = (
        (utcnow() - task.upstream_submit_time).total_seconds() if task.upstream_submit_time else 0.0
    )
    pace = pacing(context, context.upstreams.provider(config, spec))
    delay = next_poll_delay(pace, elapsed, result.progress)
    return await _reschedule(context, task, delay, {"errors": 0}, result)


def _streak(task: PollView) -> int:
    """Consecutive transient errors so far (kept in the response snapshot)."""
    return int((task.upstream_response or {}).get("_poll", {}).get("errors", 0))


def _observed(result: PollResult) -> dict[str, Any]:
    values: dict[str, Any] = {"upstream_response": result.raw}
    if result.progress is not None:
        values["progress"] = min(99, max(0, result.progress))
    for name in ("submit_time", "start_time", "finish_time"):
        if getattr(result, name) is not None:
            values[f"upstream_{name}"] = getattr(result, name)
    return values


async def _reschedule(
    context: WorkerContext,
    task: PollView,
    delay: float,
    poll_state: dict[str, Any],
    result: PollResult | None = None,
) -> str:
    next_attempt = task.polls + 1
    values = (
        _observed(result) if result else {"upstream_response": dict(task.upstream_response or {})}
    )
    values["upstream_response"] = {**values["upstream_response"], "_poll": poll_state}
    async with autocommit(context.engine) as conn:  # one statement: no transaction
        won = await tasks.advance_poll(
            conn, task, updated_at=utcnow(), next_attempt_at=due_after(context, delay), **values
        )
    if won:
        job = queue.poll(task.id, next_attempt, delay=delay)
        await queue.enqueue_after_commit(context.redis, job)
    return "pending"


async def _finished(context: WorkerContext, task: PollView, result: PollResult) -> str:
    values = _observed(result)
    async with context.engine.begin() as conn:
        moved = await tasks.transition(
            conn,
            task.id,
            [TaskStatus.RUNNING],
            TaskStatus.STORING,
            upstream_video_url=result.video_url,
            polls=task.polls + 1,
            next_attempt_at=due_after(context, 0),
            **values,
        )
    if moved is not None:
        await queue.enqueue_after_commit(context.redis, queue.store(task.id))
    return "finished"


async def _fail(
    context: WorkerContext,
    task_id: str,
    code: FailureCode,
    message: str,
    result: PollResult | None = None,
) -> str:
    values = _observed(result) if result else {}
    values.pop("progress", None)
    await finish(
        context, settlement.fail, task_id, code, message, expected=[TaskStatus.RUNNING], **values
    )
    log.info("task_failed", task_id=task_id, code=str(code))
    return str(code)
