"""poll_task: one look at the upstream task; reschedules itself until it ends.

Each hop carries the poll counter it expects; the conditional update on ``polls`` makes
a duplicate or late hop a no-op, so at most one chain of polls lives per task.
"""

from __future__ import annotations

from typing import Any

from core import settlement
from core.db import autocommit
from core.transitions import transition
from schemas.problems import FailureCode
from schemas.status import TaskStatus
from schemas.tables import utcnow
from worker import task_queries
from worker.context import WorkerContext, wctx
from worker.jobs.common import (
    enqueue_poll,
    enqueue_store,
    expired,
    finish,
    later,
    log,
    pacing,
    timeout_message,
)
from worker.schedule import backoff, next_poll_delay
from worker.upstream import (
    PermanentUpstreamError,
    PollResult,
    TaskNotFoundError,
    TransientUpstreamError,
    UpstreamState,
)


async def poll_task(ctx: dict[str, Any], task_id: str, attempt: int) -> str:
    context = wctx(ctx)
    task = await task_queries.load_for_poll(context.engine, task_id)
    if task is None or task.status != TaskStatus.RUNNING or task.polls != attempt:
        return "skipped"
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
            return await _fail(context, task_id, *timeout_message(config))
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
        code, message = timeout_message(config)
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


def _streak(task: Any) -> int:
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
    task: Any,
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
        won = await task_queries.advance_poll(
            conn,
            task,
            updated_at=utcnow(),
            next_attempt_at=later(delay + context.settings.reconcile_grace_seconds),
            **values,
        )
    if won:
        await enqueue_poll(context, task.id, next_attempt, delay)
    return "pending"


async def _finished(context: WorkerContext, task: Any, result: PollResult) -> str:
    values = _observed(result)
    async with context.engine.begin() as conn:
        moved = await transition(
            conn,
            task.id,
            [TaskStatus.RUNNING],
            TaskStatus.STORING,
            upstream_video_url=result.video_url,
            polls=task.polls + 1,
            next_attempt_at=later(context.settings.reconcile_grace_seconds),
            **values,
        )
    if moved is not None:
        await enqueue_store(context, task.id)
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
