"""The Gemini API side of the simulator (docs/upstreams.md, "Google's Gemini API").

``POST /v1beta/models/{model}:predictLongRunning`` starts an operation, ``GET
/v1beta/models/{model}/operations/{id}`` reads it, ``GET /v1beta/files/{id}:download``
redirects to the video, ``GET /v1beta/models`` lists the models (the key check). Each
needs the key, as ``x-goog-api-key`` or ``?key=``: a wrong one is Google's 400
``API_KEY_INVALID``, none a 403. The same ``[sim:...]`` prompt directives drive the
outcomes (``simulator.directives``): ``fail`` an operation ``error``, ``safety`` a
finished operation without samples but with ``raiMediaFilteredCount``, ``nourl`` one
without either, ``inline`` the video inside the operation as ``encodedVideo``, ``submit``
and the ``poll*`` errors as Google's ``RESOURCE_EXHAUSTED``, ``INTERNAL``,
``UNAVAILABLE``, ``PERMISSION_DENIED``, ``NOT_FOUND`` (or a proxy's page where the
directive names one); the download directives act on the file. The directives that
shape the gateway's answers (``url_at``, ``sparse``, status words …) do nothing here.
"""

import hmac
import secrets
import string

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from simulator import gemini_answers as google
from simulator import views
from simulator.context import Simulator, simulator_of
from simulator.directives import DirectiveError, SubmitOutcome
from simulator.gemini_request import MODELS, InvalidArgument, parse_predict
from simulator.scripted import hold_back, scripted_outcome
from simulator.state import SimTask

KEY_HEADER = "x-goog-api-key"
_ID_ALPHABET = string.ascii_lowercase + string.digits


def _key_problem(simulator: Simulator, request: Request) -> Response | None:
    """Google's answer to a missing or wrong key, None when the key is right."""
    key = request.headers.get(KEY_HEADER) or request.query_params.get("key") or ""
    if not key:
        return google.key_missing()
    if not hmac.compare_digest(key.encode(), simulator.api_key.encode()):
        return google.key_refused()
    return None


async def predict(request: Request) -> Response:
    simulator = simulator_of(request)
    if (refused := _key_problem(simulator, request)) is not None:
        return refused
    if simulator.quirks.key_exhausted:
        return google.key_suspended()
    model = request.path_params["model"]
    if model not in MODELS:
        return google.model_not_found(model)
    simulator.store.count_submit()
    try:
        body = parse_predict(model, await request.body())
        script = simulator.script_for(body.prompt)
    except (InvalidArgument, DirectiveError) as exc:
        return google.error(400, "INVALID_ARGUMENT", str(exc))
    attempt = simulator.store.count_prompt(body.prompt)
    outcome = scripted_outcome(script, attempt)
    if outcome is not None and not outcome.creates_task:
        return google.submit_rejection(outcome, script.retry_after)
    operation_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    task = simulator.start_task(body, script, str(request.base_url), task_id=operation_id)
    if outcome is SubmitOutcome.TIMEOUT:
        await hold_back(request, simulator.submit_timeout_delay)
    elif outcome is not None:
        return google.submit_rejection(outcome, script.retry_after)
    return JSONResponse({"name": _name(task)})


async def get_operation(request: Request) -> Response:
    simulator = simulator_of(request)
    if (refused := _key_problem(simulator, request)) is not None:
        return refused
    name = f"models/{request.path_params['model']}/operations/{request.path_params['id']}"
    task = simulator.store.get(request.path_params["id"])
    if simulator.quirks.key_exhausted:
        if task is not None:
            task.count_refused_query()
        return google.key_suspended()
    if task is None or task.model != request.path_params["model"]:
        return google.operation_not_found(name)
    answer = task.answer_query(simulator.clock())
    if answer.error is not None:
        return google.query_error(answer.error, name, task.script.retry_after)
    script = task.script
    inline = None
    if script.inline and answer.snapshot.phase.finished and not script.fails:
        inline = await simulator.video_for(task)
    body = google.operation(
        name,
        answer.snapshot,
        video_uri=f"{str(request.base_url).rstrip('/')}/v1beta/files/{task.task_id}:download"
        "?alt=media",
        fail_reason=script.fail,
        safety=script.safety,
        with_video=answer.with_url,
        inline=inline,
    )
    return JSONResponse(body)


async def download(request: Request) -> Response:
    """The sample's URI: needs the key, then redirects to the file (as Google's storage)."""
    simulator = simulator_of(request)
    if (refused := _key_problem(simulator, request)) is not None:
        return refused
    task = simulator.store.get(request.path_params["file"])
    if task is None:
        return google.error(404, "NOT_FOUND", "File not found.")
    return RedirectResponse(views.video_url(str(request.base_url), task.task_id), status_code=302)


async def list_models(request: Request) -> Response:
    simulator = simulator_of(request)
    if (refused := _key_problem(simulator, request)) is not None:
        return refused
    size = request.query_params.get("pageSize", "")
    listed = sorted(MODELS)[: int(size)] if size.isdigit() and int(size) > 0 else sorted(MODELS)
    models = [
        {"name": f"models/{model}", "supportedGenerationMethods": ["predictLongRunning"]}
        for model in listed
    ]
    return JSONResponse({"models": models})


def _name(task: SimTask) -> str:
    return f"models/{task.model}/operations/{task.task_id}"


GEMINI_ROUTES = (
    Route("/v1beta/models/{model}:predictLongRunning", predict, methods=["POST"]),
    Route("/v1beta/models/{model}/operations/{id}", get_operation, methods=["GET"]),
    Route("/v1beta/files/{file}:download", download, methods=["GET"]),
    Route("/v1beta/models", list_models, methods=["GET"]),
)
