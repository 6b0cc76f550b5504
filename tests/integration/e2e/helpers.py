"""Waiting on and reading videos in end-to-end tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.integration.stack import Stack


async def finished(
    client: httpx.AsyncClient, video_id: str, deadline: float = 45.0
) -> dict[str, Any]:
    """Wait (with a deadline, no fixed sleeps) until the video reaches a final status."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        video = (await client.get(f"/v1/videos/{video_id}")).json()
        if video["status"] in ("completed", "failed"):
            return dict(video)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{video_id} did not finish in {deadline}s: {video}")


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


async def reaches(
    client: httpx.AsyncClient, video_id: str, statuses: set[str], deadline: float = 30.0
) -> dict[str, Any]:
    """Wait until the video's internal status is one of ``statuses``."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        video = dict((await client.get(f"/v1/videos/{video_id}")).json())
        if video["internal_status"] in statuses:
            return video
        await asyncio.sleep(0.05)
    raise AssertionError(f"{video_id} never reached {statuses}: {video}")
