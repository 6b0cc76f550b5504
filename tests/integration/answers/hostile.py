"""What the jobs-level tests of this folder share: a gateway served by a hostile server
(``conftest.py``'s fixtures), the names it is configured under, and reading a task back."""

from __future__ import annotations

from typing import Any

import httpx

from core.repo import tasks
from core.repo.tasks import Task

KIND = "hostile-gateway"
MODEL = "hostile-veo"
PRICE = 100
GRANT = 1000
# The caps as a worker derives them: 48 KiB of video inline (Gemini), 36 KiB of request
# echoed (the gateway), each with the envelope's mebibyte.
WORKER_MAX_VIDEO = 48 * 1024
WORKER_MAX_BODY = 36 * 1024
Ctx = dict[str, Any]


async def create(acme: httpx.AsyncClient, model: str = MODEL) -> str:
    """A video of `model` created through the API; its id."""
    created = await acme.post("/v1/videos", json={"prompt": "a fox", "model": model})
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


async def load(ctx: Ctx, task_id: str) -> Task:
    """The task's row as the worker context's engine reads it."""
    async with ctx["app"].engine.connect() as conn:
        task = await tasks.load(conn, task_id)
    assert task is not None
    return task
