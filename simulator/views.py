"""The JSON bodies of the gateway protocol (UPSTREAM.md section 1)."""

from typing import Any

from starlette.responses import JSONResponse

from simulator.state import SimTask
from simulator.timeline import Phase, Snapshot

ACTION = "google-videos"
WEIRD_STATUS = "WEIRD_STATE"

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


def video_url(base_url: str, task_id: str) -> str:
    return f"{base_url.rstrip('/')}/files/{task_id}.mp4"


def task_object(
    task: SimTask,
    snapshot: Snapshot,
    base_url: str,
    *,
    weird: bool = False,
    with_url: bool = True,
) -> dict[str, Any]:
    """The query answer's ``data``: the gateway's task object, also POSTed to notify_hook."""
    phase = snapshot.phase
    inner: dict[str, Any] = {
        "id": task.task_id,
        "status": "unknown" if weird else _INNER[phase],
        "status_update_time": int(snapshot.changed_at * 1000),
    }
    if phase is Phase.SUCCESS and with_url:
        inner["video_url"] = video_url(base_url, task.task_id)
    return {
        "task_id": task.task_id,
        "notify_hook": task.notify_hook,
        "action": ACTION,
        "status": _status(phase, weird=weird, lowercase=task.script.lowercase),
        "fail_reason": (task.script.fail or "") if phase is Phase.FAILURE else "",
        "submit_time": int(task.submitted_at),
        "start_time": _seconds(snapshot.started_at),
        "finish_time": _seconds(snapshot.finished_at),
        "progress": f"{snapshot.percent}%",
        "data": inner,
    }


def sim_task(task: SimTask, now: float) -> dict[str, Any]:
    """One entry of ``GET /_sim/tasks``: times are Unix seconds, ``finished_at`` is null
    until the timeline reaches SUCCESS or FAILURE."""
    snapshot = task.snapshot(now)
    return {
        "task_id": task.task_id,
        "prompt": task.prompt,
        "status": snapshot.phase.value,
        "submitted_at": task.submitted_at,
        "finished_at": snapshot.finished_at if snapshot.phase.finished else None,
    }


def _status(phase: Phase, *, weird: bool, lowercase: bool) -> str:
    if weird:
        return WEIRD_STATUS
    if lowercase:
        return _LOWERCASE[phase]
    return phase.value


def _seconds(instant: float | None) -> int:
    return 0 if instant is None else int(instant)


def success(data: object) -> JSONResponse:
    return JSONResponse({"code": "success", "message": "", "data": data})


def error(
    status_code: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message, "data": None}, status_code=status_code, headers=headers
    )


def overloaded() -> JSONResponse:
    return error(429, "upstream_overloaded", "upstream is overloaded", {"Retry-After": "1"})


def unauthorized() -> JSONResponse:
    return error(401, "unauthorized", "invalid api key")
