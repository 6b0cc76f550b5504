"""HTTP handlers: the gateway's two task routes, the file CDN and the ``/_sim`` controls;
the Gemini API's routes live in ``simulator.gemini_routes``."""

import asyncio
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from simulator import answers, views
from simulator.context import simulator_of
from simulator.directives import DirectiveError, Length, SubmitOutcome
from simulator.files import gzipped_mp4, padding_for, stream_mp4
from simulator.gemini_routes import GEMINI_ROUTES
from simulator.quirks import patched
from simulator.scripted import hold_back, scripted_outcome
from simulator.state import QueryAnswer, QueryError, SimTask
from simulator.submit import InvalidRequest, parse_submit
from simulator.timeline import Phase


async def submit(request: Request) -> Response:
    simulator = simulator_of(request)
    if not simulator.authorized(request):
        return answers.unauthorized()
    if simulator.quirks.key_exhausted:
        return answers.token_exhausted()
    simulator.store.count_submit()
    try:
        body = parse_submit(await request.body())
        script = simulator.script_for(body.prompt)
    except (InvalidRequest, DirectiveError) as exc:
        return answers.gateway_error(400, "invalid_request", str(exc))
    attempt = simulator.store.count_prompt(body.prompt)
    outcome = scripted_outcome(script, attempt)
    if outcome is not None and not outcome.creates_task:
        return answers.submit_rejection(outcome, body.model, script.retry_after)
    task = simulator.start_task(body, script, str(request.base_url))
    if outcome is SubmitOutcome.TIMEOUT:
        # The task exists and runs; only the answer is late, so the client cannot know.
        await hold_back(request, simulator.submit_timeout_delay)
    elif outcome is not None:
        # The gateway created the task, but a proxy in front of it answered instead.
        return answers.submit_rejection(outcome, body.model, script.retry_after)
    return JSONResponse(views.submit_answer(task))


async def query(request: Request) -> Response:
    simulator = simulator_of(request)
    simulator.store.count_get()
    if not simulator.authorized(request):
        return answers.unauthorized()
    task = simulator.store.get(request.path_params["task_id"])
    if simulator.quirks.key_exhausted:
        if task is not None:
            task.count_refused_query()
        return answers.token_exhausted()
    if task is None:
        return answers.task_not_exist()
    answer = task.answer_query(simulator.clock())
    if answer.error is not None:
        return _query_error(task, answer)
    return JSONResponse(views.query_body(task, answer, str(request.base_url)))


def _query_error(task: SimTask, answer: QueryAnswer) -> Response:
    retry_after = task.script.retry_after
    match answer.error:
        case QueryError.TASK_NOT_EXIST:
            return answers.task_not_exist()
        case QueryError.QUOTA_EXHAUSTED:
            return answers.token_exhausted()
        case QueryError.OVERLOADED:
            return answers.overloaded(retry_after)
        case QueryError.OVERLOADED_EMPTY:
            return answers.empty(429, retry_after)
        case QueryError.FAILED:
            return answers.gateway_error(500, "get_task_failed", "scripted task query failure")
        case QueryError.PROXY_502:
            return answers.proxy_page(502)
        case QueryError.NOT_FOUND_PAGE:
            return answers.proxy_page(404)
        case _:
            return answers.empty(502)


async def download(request: Request) -> Response:
    simulator = simulator_of(request)
    simulator.store.count_get()
    task = simulator.store.get(request.path_params["task_id"])
    if task is None:
        return PlainTextResponse("not found", status_code=404)
    task.downloads += 1
    finished = task.snapshot(simulator.clock()).phase is Phase.SUCCESS
    if task.script.download404 or task.script.safety or not finished:
        return PlainTextResponse("not found", status_code=404)
    video = await simulator.video_for(task)
    broken = task.downloads <= task.script.truncate
    if broken:
        video = video[: len(video) // 2]
    padding = 0 if broken else padding_for(len(video), simulator.target_size(task))
    match task.script.length:
        case Length.ABSENT:  # no length: the server sends it chunked
            return StreamingResponse(stream_mp4(video, padding), media_type="video/mp4")
        case Length.GZIP:
            encoded = await asyncio.to_thread(gzipped_mp4, video, padding)
            headers = {"Content-Encoding": "gzip"}
            return Response(encoded, media_type="video/mp4", headers=headers)
        case _:
            return StreamingResponse(
                stream_mp4(video, padding),
                media_type="video/mp4",
                headers={"Content-Length": str(len(video) + padding)},
            )


async def stats(request: Request) -> Response:
    return JSONResponse(simulator_of(request).store.stats())


async def list_tasks(request: Request) -> Response:
    """Every task with its prompt, timeline, request as received and what its video shows."""
    simulator = simulator_of(request)
    now = simulator.clock()
    return JSONResponse({"tasks": [views.sim_task(t, now) for t in simulator.store.tasks.values()]})


async def config(request: Request) -> Response:
    """``GET``: the quirks in force; ``POST``: change some of them (see ``simulator.quirks``)."""
    simulator = simulator_of(request)
    if request.method == "POST":
        try:
            simulator.quirks = patched(simulator.quirks, json.loads(await request.body()))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(simulator.quirks.as_json())


async def reset(request: Request) -> Response:
    simulator_of(request).reset()
    return JSONResponse({"reset": True})


ROUTES = (
    *GEMINI_ROUTES,
    Route("/google/v1/models/veo/videos", submit, methods=["POST"]),
    Route("/google/v1/tasks/{task_id}", query, methods=["GET"]),
    Route("/files/{task_id}.mp4", download, methods=["GET"]),
    Route("/_sim/stats", stats, methods=["GET"]),
    Route("/_sim/tasks", list_tasks, methods=["GET"]),
    Route("/_sim/config", config, methods=["GET", "POST"]),
    Route("/_sim/reset", reset, methods=["POST"]),
)
