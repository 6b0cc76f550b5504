"""poll_task: one look at the upstream task; reschedules itself until it ends.

Each hop carries the poll counter it expects; the conditional update on ``polls`` makes
a duplicate or late hop a no-op, so at most one chain of polls lives per task.

What a look can say, and what the hop does (README, "Upstream behaviour"):

- a video URL (the best candidate that is not one of the image URLs the submit sent) ->
  storing; a failure (or a success that a safety filter emptied) -> failed;
- success without a URL -> a few more polls (``NO_VIDEO_GRACE_POLLS``), then failed;
- transient trouble -> backoff (a Retry-After honoured up to its cap);
- the key or account refused (401/403, quota), or any other 3xx/4xx (the query URL leads
  nowhere: a wrong base URL, a proxy's page) -> the operator is alerted and the task backs off like
  transient trouble: it is not the task's fault, the video is still made;
- ``task_not_exist`` within ``TASK_NOT_FOUND_GRACE_SECONDS`` of the submit -> the
  gateway's replication lag: transient; after that the task is lost.

No hop is ever scheduled past the task's deadline: the last one lands on it, to take a
finished video or to fail the task with ``timeout``.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from core import queue, settlement
from core.db import autocommit, driver_autocommit
from core.repo import activity, tasks
from core.repo.tasks import PollView
from schemas.clock import utcnow
from schemas.config import RuntimeConfig
from schemas.problems import FailureCode
from schemas.status import ActivityKind, TaskStatus
from worker.budget import Deferred
from worker.context import WorkerContext, wctx
from worker.jobs.deadline import expired, seconds_left, timeout_failure
from worker.jobs.deferral import defer_poll, poll_call
from worker.jobs.finishing import finish
from worker.jobs.pacing import due_after, lateness, pacing, poll_pacing
from worker.log_context import bind_request
from worker.schedule import backoff, next_poll_delay
from worker.upstream import (
    OperatorProblemError,
    PermanentUpstreamError,
    PollResult,
    TaskNotFoundError,
    TransientUpstreamError,
    UpstreamState,
)
from worker.upstream.routing import kind_of

log = structlog.get_logger(__name__)

# The key of the poll bookkeeping kept in the task's upstream_response snapshot.
_STATE = "_poll"
_MAX_UNKNOWN_WORDS = 8


async def poll_task(ctx: dict[str, Any], task_id: str, attempt: int) -> str:
    context = wctx(ctx)
    async with driver_autocommit(context.engine) as conn:
        task = await tasks.load_for_poll(conn, task_id)
    if task is None or task.status != TaskStatus.RUNNING or task.polls != attempt:
        return "skipped"
    bind_request(task.request_id)
    if task.upstream_task_id is None:  # a running task always has one; never poll None
        message = "The running task has no upstream task id."
        return await _fail(context, task_id, FailureCode.UPSTREAM_TASK_LOST, message)
    config = await context.config.get()
    spec = config.model(task.model)
    route, call = kind_of(task.upstream_route), poll_call(context, task)
    started = time.perf_counter()
    try:
        async with context.upstreams.lease(config, spec, route, call=call) as upstream:
            started = time.perf_counter()  # the call's latency, not the budget's wait
            result = await upstream.poll(task.upstream_task_id)
    except Deferred as exc:
        return await defer_poll(context, task, exc.delay)
    except TaskNotFoundError as exc:
        if _just_submitted(context, task):
            return await _back_off(context, task, config, exc.code, None, _took(started))
        seen = {"latency_ms": _took(started), "error": exc.code}
        return await _fail(context, task_id, FailureCode.UPSTREAM_TASK_LOST, exc.message, seen=seen)
    except OperatorProblemError as exc:
        context.alerts.report("poll", exc, task_id=task_id)
        return await _back_off(context, task, config, exc.code, None, _took(started))
    except PermanentUpstreamError as exc:
        seen = {"latency_ms": _took(started), "error": exc.code}
        return await _fail(context, task_id, FailureCode.UPSTREAM_REJECTED, exc.message, seen=seen)
    except TransientUpstreamError as exc:
        return await _back_off(context, task, config, exc.code, exc.retry_after, _took(started))
    context.alerts.ok()
    return await _look(context, task, config, result, _took(started), lateness(ctx))


def _took(started: float) -> int:
    """Milliseconds since ``started`` (``time.perf_counter()``)."""
    return round((time.perf_counter() - started) * 1000)


async def _look(
    context: WorkerContext,
    task: PollView,
    config: RuntimeConfig,
    result: PollResult,
    latency_ms: int,
    late: float = 0.0,
) -> str:
    """Act on an answer the upstream gave about the task (``latency_ms``: the poll's;
    ``late``: seconds since the hop was due, its own time so far included)."""
    seen: dict[str, Any] = {"latency_ms": latency_ms, "state": str(result.state)}
    if result.progress is not None:
        seen["progress"] = result.progress
    failure = result.failure()
    if failure is not None:
        return await _fail(context, task.id, failure.code, failure.message, result, seen)
    video_url = _video_url(task, result)
    if result.state == UpstreamState.SUCCEEDED and video_url:
        return await _finished(context, task, result, video_url, seen)
    state = dict(_state(task), errors=0)
    state.pop("last_error", None)
    if result.state == UpstreamState.SUCCEEDED:
        state["no_video"] = int(state.get("no_video", 0)) + 1
        if state["no_video"] > context.settings.no_video_grace_polls or expired(task, config):
            message = "The upstream reported success but gave no video URL."
            code = FailureCode.UPSTREAM_NO_VIDEO
            return await _fail(context, task.id, code, message, result, seen)
        delay = context.settings.poll_min_interval
        return await _reschedule(context, task, config, delay, state, seen, result)
    if expired(task, config):
        return await _fail(context, task.id, *timeout_failure(config), result, seen)
    if result.state == UpstreamState.UNKNOWN:
        _note_unknown(task, state, result.raw_status)
    submitted = task.upstream_submit_time
    elapsed = (utcnow() - submitted).total_seconds() if submitted else 0.0
    kind = kind_of(task.upstream_route)
    provider = context.upstreams.provider(config, config.model(task.model), kind)
    pace = await poll_pacing(context, provider)
    expected = await context.durations.refresh(context.redis, kind, task.model)
    delay = next_poll_delay(pace, elapsed, result.progress, expected, late)
    # A provider without progress (Gemini): shown from the model's learned durations, but
    # the pacing keeps to what the provider said (an estimate must not crowd the polls).
    shown = result.progress
    if shown is None:
        shown = context.durations.progress(kind, task.model, elapsed)
    return await _reschedule(context, task, config, delay, state, seen, result, shown)


async def _back_off(
    context: WorkerContext,
    task: PollView,
    config: RuntimeConfig,
    code: str,
    retry_after: float | None,
    latency_ms: int | None = None,
) -> str:
    """Poll again later after trouble that may pass; the deadline still holds.
    ``latency_ms`` is the failed poll's (None when no poll was made)."""
    if expired(task, config):
        return await _fail(context, task.id, *timeout_failure(config))
    streak = int(_state(task).get("errors", 0)) + 1
    delay = backoff(pacing(context), streak, retry_after)
    log.info("poll_transient", task_id=task.id, code=code, delay=round(delay, 2))
    state = {**_state(task), "errors": streak, "last_error": code}
    seen = {"latency_ms": latency_ms, "error": code}
    await _reschedule(context, task, config, delay, state, seen)
    return "backoff"


def _just_submitted(context: WorkerContext, task: PollView) -> bool:
    """Whether `task_not_exist` may still be the gateway's replication lag."""
    since = task.upstream_submit_time or task.created_at
    age = (utcnow() - since).total_seconds()
    return age < context.settings.task_not_found_grace_seconds


def _state(task: PollView) -> dict[str, Any]:
    """The poll bookkeeping: `errors` (consecutive transient errors), `last_error`,
    `no_video` (successes without a URL so far), `unknown` (status words logged),
    `inputs` (the image URLs the submit sent: never the video)."""
    state = (task.upstream_response or {}).get(_STATE)
    return dict(state) if isinstance(state, dict) else {}


def initial_state(inputs: list[str]) -> dict[str, Any]:
    """The poll bookkeeping a submit leaves in the snapshot (under `_STATE`): the input
    URLs it sent, which an answer may echo and which are never the video."""
    return {_STATE: {"inputs": inputs}} if inputs else {}


def _video_url(task: PollView, result: PollResult) -> str | None:
    """The answer's best video URL that is not one of the inputs we sent."""
    inputs = {url for url in _state(task).get("inputs", []) if isinstance(url, str)}
    for url in result.video_urls or ((result.video_url,) if result.video_url else ()):
        if url not in inputs:
            return url
    return None


def _note_unknown(task: PollView, state: dict[str, Any], word: str) -> None:
    """Log an unrecognised status word once per task (and remember that it was)."""
    seen = [w for w in state.get("unknown", []) if isinstance(w, str)]
    if word in seen or len(seen) >= _MAX_UNKNOWN_WORDS:
        return
    log.warning("upstream_status_unknown", task_id=task.id, status=word)
    state["unknown"] = [*seen, word]


def _observed(result: PollResult, progress: int | None = None) -> dict[str, Any]:
    """The columns one answer updates; `progress` (what to show) defaults to the
    answer's own, and is never 100 before the video is stored."""
    values: dict[str, Any] = {"upstream_response": result.raw}
    shown = result.progress if progress is None else progress
    if shown is not None:
        values["progress"] = min(99, max(0, shown))
    for name in ("submit_time", "start_time", "finish_time"):
        if getattr(result, name) is not None:
            values[f"upstream_{name}"] = getattr(result, name)
    return values


async def _reschedule(
    context: WorkerContext,
    task: PollView,
    config: RuntimeConfig,
    delay: float,
    poll_state: dict[str, Any],
    seen: dict[str, Any],
    result: PollResult | None = None,
    progress: int | None = None,
) -> str:
    # Never past the deadline: the last hop lands on it (a finished video is still taken).
    delay = min(delay, seconds_left(task, config))
    next_attempt = task.polls + 1
    values = (
        _observed(result, progress)
        if result
        else {"upstream_response": dict(task.upstream_response or {})}
    )
    values["upstream_response"] = {**values["upstream_response"], _STATE: poll_state}
    async with driver_autocommit(context.engine) as conn:  # one statement: no transaction
        won = await tasks.advance_poll(
            conn,
            task,
            seen,
            updated_at=utcnow(),
            next_attempt_at=due_after(context, delay),
            **values,
        )
    if won:
        job = queue.poll(task.id, next_attempt, delay=delay)
        await queue.enqueue_after_commit(context.redis, job)
    return "pending"


async def _finished(
    context: WorkerContext,
    task: PollView,
    result: PollResult,
    video_url: str,
    seen: dict[str, Any],
) -> str:
    submitted, finished = task.upstream_submit_time, result.finish_time or utcnow()
    values = _observed(result)
    async with context.engine.begin() as conn:
        moved = await tasks.transition(
            conn,
            task.id,
            [TaskStatus.RUNNING],
            TaskStatus.STORING,
            upstream_video_url=video_url,
            polls=task.polls + 1,
            next_attempt_at=due_after(context, 0),
            **values,
        )
        if moved is not None:
            await activity.record(conn, task.id, ActivityKind.POLL, seen)
    if moved is not None:
        await queue.enqueue_after_commit(context.redis, queue.store(task.id))
        if submitted is not None:  # learned once per task: only by the hop that moved it
            seconds = (finished - submitted).total_seconds()
            kind = kind_of(task.upstream_route)
            await context.durations.learn(context.redis, kind, task.model, seconds)
    return "finished"


async def _fail(
    context: WorkerContext,
    task_id: str,
    code: FailureCode,
    message: str,
    result: PollResult | None = None,
    seen: dict[str, Any] | None = None,
) -> str:
    """Fail the task (settled: released, event written); ``seen``, the poll that led
    here, goes into its history first."""
    values = _observed(result) if result else {}
    values.pop("progress", None)
    if seen is not None:
        async with autocommit(context.engine) as conn:
            await activity.record(conn, task_id, ActivityKind.POLL, seen)
    await finish(
        context, settlement.fail, task_id, code, message, expected=[TaskStatus.RUNNING], **values
    )
    log.info("task_failed", task_id=task_id, code=str(code))
    return str(code)
