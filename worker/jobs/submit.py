"""submit_task: queued → submitting → running, the one non-idempotent upstream call.

``submitting`` is written (and committed) before the call, so a crash during the call
leaves a task the reconciler recognises as ambiguous (docs/architecture.md, "Queue").
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from core import callback, queue, settlement
from core.db import autocommit
from core.repo import activity, tasks
from core.repo.tasks import Owner, Task
from schemas.catalogue import ModelSpec, Route
from schemas.clock import utcnow
from schemas.config import RuntimeConfig
from schemas.problems import FailureCode
from schemas.status import ActivityKind, TaskStatus
from worker.context import WorkerContext, wctx
from worker.jobs.deadline import expired, seconds_left, timeout_failure
from worker.jobs.finishing import finish
from worker.jobs.inputs import InputLater, InputMissing, task_images
from worker.jobs.outage import recorded
from worker.jobs.pacing import due_after, later, pacing, poll_pacing
from worker.jobs.poll import initial_state
from worker.log_context import bind_request
from worker.schedule import backoff, next_poll_delay
from worker.upstream import (
    AmbiguousSubmitError,
    OperatorProblemError,
    PermanentUpstreamError,
    RemoteImage,
    SubmitRequest,
    SubmitResult,
    TaskNotFoundError,
    TransientUpstreamError,
    UpstreamError,
    routing,
)
from worker.upstream.registry import Provider

log = structlog.get_logger(__name__)

# Set in the task's upstream_response when a submit on its route was ambiguous and the
# policy resubmits: the route may hold a paid task, so the task never leaves it.
_PINNED = "_ambiguous_on"


async def submit_task(ctx: dict[str, Any], task_id: str) -> str:
    context = wctx(ctx)
    async with context.engine.connect() as conn:
        task = await tasks.load(conn, task_id)
    if task is None or task.status != TaskStatus.QUEUED:
        return "skipped"
    bind_request(task.request_id)
    config = await context.config.get()
    if expired(task, config):
        await finish(context, settlement.fail, task_id, *timeout_failure(config))
        return "timeout"
    spec = config.model(task.model)
    routes = routing.routes_of(config, spec, task.model)
    index = routing.position(routes, task.upstream_route, task.model)
    route = routes[index]
    async with context.engine.begin() as conn:
        claimed = await tasks.transition(
            conn,
            task_id,
            [TaskStatus.QUEUED],
            TaskStatus.SUBMITTING,
            submit_attempts=task.submit_attempts + 1,
            # Recorded before the call: an ambiguous submit stays on (and names) its route.
            upstream_route=route.label(task.model),
            # Past the longest the submit call can take: only then is it ambiguous.
            next_attempt_at=later(
                context.settings.upstream_timeout_seconds + context.settings.reconcile_grace_seconds
            ),
        )
    if claimed is None:
        return "lost race"
    provider = context.upstreams.provider(config, spec, route.provider)
    try:
        request = await _request(context, task, spec, provider, route.provider_model)
    except InputMissing as exc:
        await finish(context, settlement.fail, task_id, FailureCode.INPUT_UNAVAILABLE, str(exc))
        return "input missing"
    except InputLater as exc:
        later_error = TransientUpstreamError("input_lookup", str(exc))
        return await _retry_later(context, task, later_error, index)
    bound = log.bind(task_id=task_id, attempt=task.submit_attempts + 1, route=route.provider)
    # The last route, or one an ambiguous submit may have created the task on: no failover.
    can_move = index + 1 < len(routes) and not _pinned(task)
    try:
        result = await _submit(context, task_id, config, spec, route.provider, request)
    except TransientUpstreamError as exc:
        spent = task.submit_attempts + 1 >= context.settings.submit_max_tries
        if can_move and (spent or routing.moves_at_once(exc)):
            return await _next_route(context, task, routes, index, exc)
        return await _retry_later(context, task, exc, index)
    except OperatorProblemError as exc:
        context.alerts.report("submit", exc, task_id=task_id)
        if exc.cause == "key_unreadable":
            # Nothing was sent and the task is not at fault: it waits for the operator.
            waiting = TransientUpstreamError(exc.code, exc.message)
            return await _retry_later(context, task, waiting, index)
        if can_move:
            return await _next_route(context, task, routes, index, exc)
        code, message = operator_failure(exc)
        await finish(
            context,
            settlement.fail,
            task_id,
            code,
            message,
            expected=[TaskStatus.SUBMITTING],
            upstream_response=_snapshot(exc),
        )
        return str(code)
    except PermanentUpstreamError as exc:
        if isinstance(exc, TaskNotFoundError) and can_move:
            return await _next_route(context, task, routes, index, exc)
        bound.info("submit_rejected", code=exc.code)
        await finish(
            context,
            settlement.fail,
            task_id,
            FailureCode.UPSTREAM_REJECTED,
            exc.message,
            expected=[TaskStatus.SUBMITTING],
            upstream_response=_snapshot(exc),
        )
        return "rejected"
    except AmbiguousSubmitError as exc:
        bound.warning("submit_ambiguous", code=exc.code)
        return await ambiguous(context, task_id, f"Submit outcome unknown: {exc.message}")
    context.alerts.ok()
    pace = await poll_pacing(context, provider)
    expected = await context.durations.refresh(context.redis, route.provider, task.model)
    delay = min(next_poll_delay(pace, 0.0, None, expected), seconds_left(task, config))

    async def running() -> Owner | None:
        async with context.engine.begin() as conn:
            return await tasks.transition(
                conn,
                task_id,
                [TaskStatus.SUBMITTING],
                TaskStatus.RUNNING,
                upstream_task_id=result.task_id,
                upstream_action=provider.upstream_action,
                upstream_submit_time=utcnow(),
                upstream_response={**result.raw, **initial_state(_sent_urls(request))},
                next_attempt_at=due_after(context, delay),
            )

    # Lost to a database outage, the upstream's task id would leave the task ambiguous:
    # retry in place until the reconciler may take the task (one grace after the call).
    moved = await recorded(running, context.settings.reconcile_grace_seconds)
    if moved is None:  # cancelled while we were submitting
        bound.info("submitted_after_cancel", upstream_task_id=result.task_id)
        return "cancelled meanwhile"
    await queue.enqueue_after_commit(context.redis, queue.poll(task_id, 0, delay=delay))
    bound.info("submitted", upstream_task_id=result.task_id)
    return "submitted"


async def _submit(
    context: WorkerContext,
    task_id: str,
    config: RuntimeConfig,
    spec: ModelSpec | None,
    kind: str,
    request: SubmitRequest,
) -> SubmitResult:
    """The upstream submit call on provider ``kind``, recorded in the task's history
    (``task_activity``) whatever its outcome; raises what the call raises."""
    started, started_at = time.perf_counter(), utcnow()
    seen: dict[str, Any] = {"route": kind}
    try:
        async with context.upstreams.lease(config, spec, kind) as upstream:
            result = await upstream.submit(request)
        seen["upstream_task_id"] = result.task_id
        return result
    except UpstreamError as exc:
        seen["error"] = exc.code
        raise
    finally:
        seen["latency_ms"] = round((time.perf_counter() - started) * 1000)
        with contextlib.suppress(SQLAlchemyError, OSError):  # history must not fail a submit
            async with autocommit(context.engine) as conn:
                await activity.record(conn, task_id, ActivityKind.SUBMIT, seen, started_at)


def _sent_urls(request: SubmitRequest) -> list[str]:
    """The image URLs the submit passed on (an answer may echo them; never the video)."""
    return [image.url for image in request.images if isinstance(image, RemoteImage)]


def operator_failure(exc: OperatorProblemError) -> tuple[FailureCode, str]:
    """The failure of a submit refused for the operator's key or account: the code names
    the cause, the message keeps the HTTP status and the provider's own code and text."""
    detail = ", ".join(
        part for part in (f"HTTP {exc.status}" if exc.status else None, exc.upstream_code) if part
    )
    said = f" ({detail})" if detail else ""
    if exc.cause == "quota":
        return (
            FailureCode.UPSTREAM_QUOTA,
            f"The upstream account is out of quota{said}: {exc.message}",
        )
    if exc.cause == "endpoint":
        return (
            FailureCode.UPSTREAM_REJECTED,
            f"The upstream base URL does not lead to its API{said}: {exc.message}",
        )
    return (
        FailureCode.UPSTREAM_AUTH,
        f"The upstream refused the service's API key{said}: {exc.message}",
    )


async def ambiguous(context: WorkerContext, task_id: str, message: str) -> str:
    """Apply the configured policy to a submit whose outcome we cannot know (on the same
    route: the task may exist there)."""
    config = await context.config.get()
    if config.ambiguous_submit_policy == "resubmit":
        async with context.engine.connect() as conn:
            task = await tasks.load(conn, task_id)
        if task is not None:
            routes = routing.routes_of(config, config.model(task.model), task.model)
            index = routing.position(routes, task.upstream_route, task.model)
            return await _retry_later(context, task, None, index, pin=True)
    await finish(
        context,
        settlement.fail,
        task_id,
        FailureCode.UPSTREAM_SUBMIT_AMBIGUOUS,
        message,
        expected=[TaskStatus.SUBMITTING],
    )
    return "ambiguous"


async def _next_route(
    context: WorkerContext, task: Task, routes: list[Route], index: int, exc: UpstreamError
) -> str:
    """Queue the task again on the route after `index`, at once and with its submit tries
    afresh: this submit failed without creating a task."""
    following = routes[index + 1]
    label = following.label(task.model)
    await _requeue(
        context,
        task.id,
        queue.submit(task.id, variant=_route_variant(index + 1)),
        submit_attempts=0,
        upstream_route=label,
        next_attempt_at=due_after(context, 0.0),
    )
    log.info(
        "submit_failover",
        task_id=task.id,
        failed_route=routes[index].label(task.model),
        route=label,
        code=exc.code,
        status=exc.status,
    )
    return "next route"


async def _requeue(context: WorkerContext, task_id: str, job: queue.Job, **values: Any) -> None:
    """Move the submitting task back to queued (setting `values` too) and queue its submit
    `job` once that commits; nothing when another job moved the task first."""
    async with context.engine.begin() as conn:
        back = await tasks.transition(
            conn, task_id, [TaskStatus.SUBMITTING], TaskStatus.QUEUED, **values
        )
    if back is not None:
        await queue.enqueue_after_commit(context.redis, job)


def _route_variant(index: int) -> str | None:
    """Job ids of a route after the first carry its number (tries restart at each)."""
    return f"route{index}" if index else None


def _pinned(task: Task) -> bool:
    """Whether a submit of this task was ambiguous on the route it records."""
    marked = (task.upstream_response or {}).get(_PINNED)
    return marked is not None and marked == task.upstream_route


async def _retry_later(
    context: WorkerContext,
    task: Task,
    exc: TransientUpstreamError | None,
    index: int = 0,
    *,
    pin: bool = False,
) -> str:
    """Queue the task's submit again after a backoff, on the same route (`pin`: the
    submit was ambiguous, so it must stay there for good)."""
    attempt = task.submit_attempts + 1
    if attempt >= context.settings.submit_max_tries:
        message = exc.message if exc else "submit kept failing"
        await finish(
            context,
            settlement.fail,
            task.id,
            FailureCode.UPSTREAM_UNAVAILABLE,
            f"Upstream unavailable after {attempt} submit attempts: {message}",
            expected=[TaskStatus.SUBMITTING],
        )
        return "gave up"
    delay = backoff(pacing(context), attempt, exc.retry_after if exc else None)
    config = await context.config.get()
    if delay >= seconds_left(task, config):
        # The retry would come after the deadline, where the task only times out: do it
        # now, releasing the hold and the user's concurrency slot at once.
        log.info("submit_retry_past_deadline", task_id=task.id, delay=round(delay, 2))
        await finish(
            context,
            settlement.fail,
            task.id,
            *timeout_failure(config),
            expected=[TaskStatus.SUBMITTING],
        )
        return "timeout"
    await _requeue(
        context,
        task.id,
        queue.submit(task.id, retry=attempt, delay=delay, variant=_route_variant(index)),
        next_attempt_at=due_after(context, delay),
        **_pin_values(task) if pin else {},
    )
    log.info(
        "submit_retry",
        task_id=task.id,
        attempt=attempt,
        delay=round(delay, 2),
        code=exc.code if exc else "ambiguous",
    )
    return "retry"


async def _request(
    context: WorkerContext,
    task: Task,
    spec: ModelSpec | None,
    provider: Provider,
    provider_model: str | None = None,
) -> SubmitRequest:
    """The request for `provider`: image roles by position from the catalogue entry
    (`spec` None: the model left the catalogue after the task was created), and what the
    caller chose, validated against that entry at create (`negative_prompt` and
    `person_generation` as the request gave them). Raises InputMissing / InputLater."""
    chosen = task.request_snapshot
    roles = chosen.get("image_roles")
    images = await task_images(
        context,
        task.input_refs,
        spec,
        provider,
        task_id=task.id,
        roles=[str(role) for role in roles] if isinstance(roles, list) else None,
    )
    negative = chosen.get("negative_prompt")
    people = chosen.get("person_generation")
    callback_url = context.settings.callback_url
    hook = (
        callback.hook_url(callback_url, context.settings.secret_key, task.id)
        if callback_url and provider.calls_back
        else None
    )
    return SubmitRequest(
        notify_hook=hook,
        model=provider_model or task.model,
        prompt=task.prompt,
        enhance_prompt=task.enhance_prompt,
        images=images,
        # Sent only where the model offers a choice: a one-ratio model makes its own.
        aspect_ratio=task.aspect_ratio if spec and spec.supports_aspect_ratio else None,
        enable_upsample=True if spec and spec.upsample and task.resolution == "1080p" else None,
        seed=task.seed,
        # Where the provider has a field for it: a model that offers a choice.
        resolution=task.resolution if spec and len(spec.resolutions) > 1 else None,
        duration_seconds=task.duration_seconds,
        negative_prompt=negative if isinstance(negative, str) else None,
        person_generation=people if isinstance(people, str) else None,
    )


def _pin_values(task: Task) -> dict[str, Any]:
    return {"upstream_response": {**(task.upstream_response or {}), _PINNED: task.upstream_route}}


def _snapshot(exc: Exception) -> dict[str, Any]:
    body = getattr(exc, "body", None)
    return {
        "error": str(exc),
        "status": getattr(exc, "status", None),
        "body": body if isinstance(body, dict) else str(body)[:2000],
    }
