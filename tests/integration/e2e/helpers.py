"""Waiting on and reading videos in end-to-end tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.eventually import eventually
from tests.integration.stack import Stack


async def read_video(client: httpx.AsyncClient, video_id: str) -> dict[str, Any]:
    """The video object as ``GET /v1/videos/{id}`` answers it now."""
    return dict((await client.get(f"/v1/videos/{video_id}")).json())


async def finished(
    client: httpx.AsyncClient, video_id: str, deadline: float = 45.0
) -> dict[str, Any]:
    """Wait (with a deadline, no fixed sleeps) until the video reaches a final status."""
    return await eventually(
        lambda: read_video(client, video_id),
        deadline,
        until=lambda v: v["status"] in ("completed", "failed"),
        what=f"{video_id} finishing",
        interval=0.1,
    )


async def create(client: httpx.AsyncClient, prompt: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/v1/videos", json={"prompt": prompt, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def credits(client: httpx.AsyncClient) -> tuple[int, int, list[str]]:
    body = (await client.get("/v1/credits/acme", params={"limit": 100})).json()
    return body["balance"], body["held"], [e["kind"] for e in body["entries"]]


async def sim_stats(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient() as c:
        return dict((await c.get(f"{stack.sim_url}/_sim/stats")).json())


async def sim_tasks(stack: Stack) -> list[dict[str, Any]]:
    """The simulator's record of every upstream task: prompt, status, times."""
    async with httpx.AsyncClient() as c:
        return list((await c.get(f"{stack.sim_url}/_sim/tasks")).json()["tasks"])


async def reaches(
    client: httpx.AsyncClient, video_id: str, statuses: set[str], deadline: float = 30.0
) -> dict[str, Any]:
    """Wait until the video's internal status is one of ``statuses``."""
    return await eventually(
        lambda: read_video(client, video_id),
        deadline,
        until=lambda v: v["internal_status"] in statuses,
        what=f"{video_id} reaching {statuses}",
        interval=0.05,
    )
