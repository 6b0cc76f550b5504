"""The JSON bodies of the gateway protocol (docs/upstreams.md) and its variants.

By default the query answer's ``data`` is the documented task object with the URL at
``data.data.video_url``. A task's script (``simulator.directives``) picks the variants of
``upstream-corpus/gateway/``: ``sparse`` inner objects (p02-p05), the URL in
``fail_reason`` (p08), the newer new-api TaskDto with ``result_url`` (p09), ``output`` /
``outputs`` inner objects, Google's operation for a safety-filtered success (p07), the
OpenAI video object for a failure (p15), other status words, and the submit answers of
other gateways (s02-s04).
"""

import secrets
import string
import uuid
from typing import Any

from starlette.responses import JSONResponse

from simulator.answers import RAI_REASON
from simulator.directives import Script, SubmitShape, UrlPlace
from simulator.state import QueryAnswer, SimTask
from simulator.timeline import Phase, Snapshot

ACTION = "google-videos"
WEIRD_STATUS = "WEIRD_STATE"
OPERATION_MODEL = "models/veo-3.0-generate-001"
TASK_DTO_MODEL = "models/veo-3.1-generate-preview"
PREDICT_RESPONSE = (
    "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
)

_LOWERCASE = {
    Phase.NOT_START: "pending",
    Phase.SUBMITTED: "pending",
    Phase.IN_PROGRESS: "processing",
    Phase.SUCCESS: "success",
    Phase.FAILURE: "failed",
}
_INNER = {
    Phase.NOT_START: "pending",
    Phase.SUBMITTED: "pending",
    Phase.IN_PROGRESS: "processing",
    Phase.SUCCESS: "completed",
    Phase.FAILURE: "failed",
}
_ALPHANUMERIC = string.ascii_letters + string.digits


def video_url(base_url: str, task_id: str) -> str:
    return f"{base_url.rstrip('/')}/files/{task_id}.mp4"


def new_task_id(shape: SubmitShape, model: str, now: float) -> str:
    """A task id as the gateway answering in ``shape`` makes them."""
    if shape is SubmitShape.TASK_ID:
        return f"{model}:{int(now)}-{''.join(secrets.choice(_ALPHANUMERIC) for _ in range(10))}"
    if shape is SubmitShape.ID:
        return f"{model}:{uuid.uuid4()}"
    if shape is SubmitShape.OPENAI:
        return "task_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(24))
    return str(uuid.uuid4())


def submit_answer(task: SimTask) -> dict[str, Any]:
    """The success answer of the submit that created ``task``."""
    shape = task.script.submit_shape
    if shape is SubmitShape.TASK_ID:
        return {"task_id": task.task_id}
    if shape is SubmitShape.ID:
        return {
            "id": task.task_id,
            "status": "pending",
            "status_update_time": int(task.submitted_at * 1000),
        }
    if shape is SubmitShape.OPENAI:
        return {
            "id": task.task_id,
            "task_id": task.task_id,
            "object": "video",
            "model": task.model,
            "status": "queued",
            "progress": 0,
            "created_at": int(task.submitted_at),
        }
    return envelope(task.task_id)


def query_body(task: SimTask, answer: QueryAnswer, base_url: str) -> dict[str, Any]:
    """The HTTP 200 body of one query: the envelope around the task object, or a variant."""
    snapshot = answer.snapshot
    if answer.null_data:
        return {"code": "success", "data": None}
    if task.script.openai_failure and snapshot.phase is Phase.FAILURE:
        return openai_failure(task)
    return envelope(
        task_object(task, snapshot, base_url, weird=answer.weird, with_url=answer.with_url)
    )


def envelope(data: object) -> dict[str, Any]:
    return {"code": "success", "message": "", "data": data}


def task_object(
    task: SimTask,
    snapshot: Snapshot,
    base_url: str,
    *,
    weird: bool = False,
    with_url: bool = True,
) -> dict[str, Any]:
    """The query answer's ``data``: the gateway's task object, also POSTed to notify_hook."""
    script = task.script
    phase = snapshot.phase
    url = video_url(base_url, task.task_id) if phase is Phase.SUCCESS and with_url else None
    if script.safety:
        url = None
    status = status_word(phase, script, weird=weird)
    if script.url_at is UrlPlace.RESULT_URL:
        return _task_dto(task, snapshot, status, url)
    fail_reason = _fail_reason(script) if phase is Phase.FAILURE else ""
    if url is not None and script.url_at is UrlPlace.FAIL_REASON:
        fail_reason = url
    return {
        "task_id": task.task_id,
        "notify_hook": task.notify_hook,
        "action": ACTION,
        "status": status,
        "fail_reason": fail_reason,
        "submit_time": int(task.submitted_at),
        "start_time": _seconds(snapshot.started_at),
        "finish_time": _seconds(snapshot.finished_at),
        "progress": f"{snapshot.percent}%",
        "data": _inner(task, snapshot, url, weird=weird),
    }


def status_word(phase: Phase, script: Script, *, weird: bool = False) -> str:
    """The outer status word of ``phase`` as the task's script has the gateway say it."""
    if weird:
        return WEIRD_STATUS
    chosen = {
        Phase.NOT_START: script.queued_word,
        Phase.SUBMITTED: script.queued_word,
        Phase.IN_PROGRESS: script.running_word,
        Phase.SUCCESS: script.success_word,
        Phase.FAILURE: script.failure_word,
    }[phase]
    if chosen is not None:
        return chosen
    return _LOWERCASE[phase] if script.lowercase else phase.value


def _inner(task: SimTask, snapshot: Snapshot, url: str | None, *, weird: bool) -> object:
    script = task.script
    phase = snapshot.phase
    if script.safety and phase.finished:
        return _operation(task, done=True, filtered=True)
    if script.sparse and phase in (Phase.NOT_START, Phase.SUBMITTED):
        return None
    if script.url_at is UrlPlace.FAIL_REASON and phase is Phase.SUCCESS:
        return {"id": task.task_id, "status": _INNER[phase]}
    inner: dict[str, Any] = {
        "id": task.task_id,
        "status": "unknown" if weird else _INNER[phase],
    }
    if script.url_at is UrlPlace.OUTPUT and url is not None:
        inner["output"] = url
    elif script.url_at is UrlPlace.OUTPUTS and url is not None:
        inner["outputs"] = [url]
    elif url is not None or script.sparse:
        inner["video_url"] = url or ""
    inner["status_update_time"] = int(snapshot.changed_at * 1000)
    return inner


def _task_dto(task: SimTask, snapshot: Snapshot, status: str, url: str | None) -> dict[str, Any]:
    """Newer new-api's TaskDto (p09): the URL, once there is one, in ``result_url``."""
    phase = snapshot.phase
    return {
        "id": task.sequence,
        "created_at": int(task.submitted_at),
        "updated_at": int(snapshot.changed_at),
        "task_id": task.task_id,
        "platform": "24",
        "user_id": 1,
        "group": "default",
        "channel_id": 3,
        "quota": 100,
        "action": "generate",
        "status": status,
        "fail_reason": _fail_reason(task.script) if phase is Phase.FAILURE else "",
        "result_url": url or "",
        "submit_time": int(task.submitted_at),
        "start_time": _seconds(snapshot.started_at),
        "finish_time": _seconds(snapshot.finished_at),
        "progress": f"{snapshot.percent}%",
        "properties": {"input": task.prompt},
        "data": _operation(
            task, done=phase.finished, filtered=task.script.safety and phase.finished
        ),
    }


def _operation(task: SimTask, *, done: bool, filtered: bool) -> dict[str, Any]:
    """Google's long-running operation as gateways pass it through (p07, p09)."""
    model = TASK_DTO_MODEL if task.script.url_at is UrlPlace.RESULT_URL else OPERATION_MODEL
    operation: dict[str, Any] = {"name": f"{model}/operations/{task.task_id}", "done": done}
    if filtered:
        operation["response"] = {
            "@type": PREDICT_RESPONSE,
            "generateVideoResponse": {
                "raiMediaFilteredCount": 1,
                "raiMediaFilteredReasons": [RAI_REASON],
            },
        }
    return operation


def openai_failure(task: SimTask) -> dict[str, Any]:
    """An OpenAI video object that failed (p15), answered with HTTP 200 and no envelope."""
    script = task.script
    return {
        "id": task.task_id,
        "object": "video",
        "model": task.model,
        "status": script.failure_word or "failed",
        "progress": 100,
        "created_at": int(task.submitted_at),
        "error": {
            "message": _fail_reason(script),
            "code": "rai_filtered" if script.fail is None else "generation_failed",
        },
    }


def _fail_reason(script: Script) -> str:
    return script.fail if script.fail is not None else RAI_REASON


def sim_task(task: SimTask, now: float) -> dict[str, Any]:
    """One entry of ``GET /_sim/tasks``: times are Unix seconds, ``finished_at`` is null
    until the timeline reaches SUCCESS or FAILURE; ``request`` is the submit body as
    received (images described by source, mime, byte count and sha256, never carried);
    ``video`` is what the rendered MP4 shows."""
    snapshot = task.snapshot(now)
    spec = task.render_spec
    return {
        "task_id": task.task_id,
        "prompt": task.prompt,
        "status": snapshot.phase.value,
        "submitted_at": task.submitted_at,
        "finished_at": snapshot.finished_at if snapshot.phase.finished else None,
        "request": task.request.received,
        "video": {
            "width": spec.width,
            "height": spec.height,
            "seconds": spec.seconds,
            "fps": spec.fps,
            "audio": spec.audio,
            "first_frame": spec.first is not None,
            "last_frame": spec.last is not None,
            "elements": len(spec.elements),
        },
    }


def _seconds(instant: float | None) -> int:
    return 0 if instant is None else int(instant)


def success(data: object) -> JSONResponse:
    return JSONResponse(envelope(data))
