"""POST /v1/upstream/callback/{token}: the gateway's notify_hook.

The body is never trusted (nor parsed): a valid token only makes the task's next poll
happen now. Unknown tokens get 404; calls faster than one per task per
``CALLBACK_MIN_INTERVAL_SECONDS`` are acknowledged and ignored. Per source address,
callbacks and wrong tokens are limited (429, README "Limits").
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import callback as tokens
from core import queue
from core.metrics import CALLBACKS
from core.repo import tasks
from schemas.api import CallbackAck, CallbackPath
from schemas.problems import Code
from schemas.status import TaskStatus
from service import params, ratelimit
from service.body import read_limited
from service.context import ctx
from service.contract import Operation, Reply
from service.errors import ProblemError
from service.ratelimit import client_address, rate_limited

EARLY_CALLBACK_DELAY_SECONDS = 2.0


async def notify(request: Request) -> Response:
    context = ctx(request)
    config = await context.config.get()
    address = client_address(request)
    wait = await context.limits.hit(ratelimit.callbacks(config), address)
    if wait is not None:
        raise rate_limited(wait, "Too many callbacks from this address.")
    token = params.path(CallbackPath, request, not_found="Unknown callback.").token
    task_id = tokens.task_of(context.settings.secret_keys, token)
    if task_id is None:
        # A wrong token is a failed authentication of its address.
        wait = await context.limits.hit(ratelimit.failed_auth(config), address)
        if wait is not None:
            raise rate_limited(wait, "Too many failed authentications from this address.")
        CALLBACKS.labels("unknown_token").inc()
        raise ProblemError(Code.NOT_FOUND, "Unknown callback.")
    await read_limited(request, 256 * 1024)  # drained, bounded, ignored
    # Proof that the upstream reaches CALLBACK_URL: workers may now poll more sparsely.
    await context.queue.set(tokens.ARRIVING_KEY, 1, ex=context.settings.callback_trust_seconds)
    interval_ms = int(context.settings.callback_min_interval_seconds * 1000)
    if interval_ms and not await context.queue.set(
        f"gv:callback:{task_id}", 1, px=interval_ms, nx=True
    ):
        CALLBACKS.labels("throttled").inc()
        return JSONResponse({"status": "ignored", "reason": "rate limited"}, status_code=202)
    async with context.engine.connect() as conn:
        position = await tasks.poll_position(conn, task_id)
    if position is None or position[0] not in (TaskStatus.SUBMITTING, TaskStatus.RUNNING):
        CALLBACKS.labels("ignored").inc()
        return JSONResponse({"status": "ignored"}, status_code=202)
    # A fast upstream can call back before the submit job has committed `running`: look
    # shortly after instead of dropping the hint (the hop skips if it is still submitting).
    delay = 0.0 if position[0] == TaskStatus.RUNNING else EARLY_CALLBACK_DELAY_SECONDS
    job = queue.poll(task_id, position[1], variant=queue.CALLBACK, delay=delay)
    await queue.enqueue_after_commit(context.queue, job)
    CALLBACKS.labels("accepted").inc()
    return JSONResponse({"status": "accepted"}, status_code=202)


operations = [
    Operation(
        "POST",
        "/v1/upstream/callback/{token}",
        notify,
        "The upstream's notify_hook: makes the task's next poll happen now (body ignored)",
        "upstream",
        (Reply(202, "Accepted, or ignored (unknown state, rate limited).", CallbackAck),),
        auth="none",
        path_params=CallbackPath,
        problems=(Code.BODY_TOO_LARGE, Code.RATE_LIMITED, Code.REQUEST_TIMEOUT),
    )
]
