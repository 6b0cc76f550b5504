"""HTTP handlers: the gateway's two task routes, the file CDN and the ``/_sim`` controls."""

import asyncio
import contextlib

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from simulator import views
from simulator.context import simulator_of
from simulator.directives import DirectiveError, Script, SubmitOutcome, parse_script
from simulator.files import padding_for, stream_mp4
from simulator.state import QueryError
from simulator.submit import InvalidRequest, parse_submit
from simulator.timeline import Phase


async def submit(request: Request) -> Response:
    simulator = simulator_of(request)
    if not simulator.authorized(request):
        return views.unauthorized()
    simulator.store.count_submit()
    try:
        body = parse_submit(await request.body())
        script = parse_script(body.prompt)
    except (InvalidRequest, DirectiveError) as exc:
        return views.error(400, "invalid_request", str(exc))
    attempt = simulator.store.count_prompt(body.prompt)
    rejection = _scripted_rejection(script, attempt)
    if rejection is not None:
        return rejection
    task = simulator.start_task(body, script, str(request.base_url))
    if script.submit is SubmitOutcome.TIMEOUT or attempt <= script.submit_timeout:
        # The task exists and runs; only the answer is late, so the client cannot know.
        await _hold_back(request, simulator.submit_timeout_delay)
    return views.success(task.task_id)


async def _hold_back(request: Request, seconds: float) -> None:
    """Wait ``seconds``, less if the client hangs up first: nobody would read the answer."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while (await request.receive())["type"] != "http.disconnect":
                pass


def _scripted_rejection(script: Script, attempt: int) -> Response | None:
    if script.submit is SubmitOutcome.BAD_REQUEST:
        return views.error(400, "invalid_request", "scripted invalid request")
    if script.submit is SubmitOutcome.OVERLOADED:
        return views.overloaded()
    if script.submit is SubmitOutcome.FAILED or attempt <= script.submit500:
        return views.error(500, "do_request_failed", "scripted upstream request failure")
    return None


async def query(request: Request) -> Response:
    simulator = simulator_of(request)
    if not simulator.authorized(request):
        return views.unauthorized()
    task = simulator.store.get(request.path_params["task_id"])
    if task is None:
        return views.error(400, "task_not_exist", "task_not_exist")
    answer = task.answer_query(simulator.clock())
    if answer.error is QueryError.OVERLOADED:
        return views.overloaded()
    if answer.error is QueryError.FAILED:
        return views.error(500, "get_task_failed", "scripted task query failure")
    body = views.task_object(
        task,
        answer.snapshot,
        str(request.base_url),
        weird=answer.weird,
        with_url=answer.with_url,
    )
    return views.success(body)


async def download(request: Request) -> Response:
    simulator = simulator_of(request)
    task = simulator.store.get(request.path_params["task_id"])
    if task is None:
        return PlainTextResponse("not found", status_code=404)
    task.downloads += 1
    finished = task.snapshot(simulator.clock()).phase is Phase.SUCCESS
    if task.script.download404 or not finished:
        return PlainTextResponse("not found", status_code=404)
    video = simulator.video
    padding = padding_for(len(video), simulator.target_size(task))
    return StreamingResponse(
        stream_mp4(video, padding),
        media_type="video/mp4",
        headers={"Content-Length": str(len(video) + padding)},
    )


async def stats(request: Request) -> Response:
    return JSONResponse(simulator_of(request).store.stats())


async def list_tasks(request: Request) -> Response:
    """Every task with its prompt and timeline, for benchmarks that time what follows."""
    simulator = simulator_of(request)
    now = simulator.clock()
    return JSONResponse({"tasks": [views.sim_task(t, now) for t in simulator.store.tasks.values()]})


async def reset(request: Request) -> Response:
    simulator_of(request).store.reset()
    return JSONResponse({"reset": True})


ROUTES = (
    Route("/google/v1/models/veo/videos", submit, methods=["POST"]),
    Route("/google/v1/tasks/{task_id}", query, methods=["GET"]),
    Route("/files/{task_id}.mp4", download, methods=["GET"]),
    Route("/_sim/stats", stats, methods=["GET"]),
    Route("/_sim/tasks", list_tasks, methods=["GET"]),
    Route("/_sim/reset", reset, methods=["POST"]),
)
