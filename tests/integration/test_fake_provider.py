"""Adding a provider is one registration plus catalogue entries: a provider defined in this
module completes a video end to end (API create → worker submit, poll, store → completed
and captured), with the ARQ worker in-process so that it sees the registration."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from arq.worker import Worker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.catalogue import ImageRole
from schemas.settings import Settings
from simulator.video import render_mp4
from tests.integration.e2e.helpers import credits, finished
from tests.integration.images import PNG, PNG_URI
from worker.options import worker_options
from worker.upstream import (
    DownloadStream,
    InlineImage,
    PollResult,
    SubmitRequest,
    SubmitResult,
    Upstream,
    UpstreamState,
    registry,
)
from worker.upstream.registry import ClientOptions, Provider

# arq 0.28's Worker.close calls redis-py's deprecated close(); nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")

MODEL = "memory-veo"
PRICE = 30


@dataclass
class InMemoryRecord:
    mp4: bytes
    submitted: list[SubmitRequest] = field(default_factory=list)
    polled: list[str] = field(default_factory=list)


class InMemoryUpstream:
    """Every task finishes on its first poll; its video is one small real MP4."""

    def __init__(self, record: InMemoryRecord) -> None:
        self.record = record

    async def submit(self, req: SubmitRequest) -> SubmitResult:
        self.record.submitted.append(req)
        task_id = f"mem-{len(self.record.submitted)}"
        return SubmitResult(task_id=task_id, raw={"name": task_id})

    async def poll(self, task_id: str) -> PollResult:
        self.record.polled.append(task_id)
        return PollResult(
            state=UpstreamState.SUCCEEDED,
            raw_status="done",
            progress=None,
            video_url=f"memory://{task_id}.mp4",
            fail_reason=None,
            submit_time=None,
            start_time=None,
            finish_time=None,
            raw={"name": task_id, "done": True},
        )

    def download(self, url: str) -> AbstractAsyncContextManager[DownloadStream]:
        return self._download()

    @asynccontextmanager
    async def _download(self) -> AsyncIterator[DownloadStream]:
        async def chunks() -> AsyncIterator[bytes]:
            yield self.record.mp4

        yield DownloadStream("video/mp4", len(self.record.mp4), chunks())

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


@pytest.fixture(scope="module")
def mp4() -> bytes:
    return render_mp4(seconds=0.25, width=64, height=36)


@pytest.fixture
def in_memory(mp4: bytes) -> Iterator[InMemoryRecord]:
    record = InMemoryRecord(mp4)

    def build(base_url: str, api_key: str, options: ClientOptions) -> Upstream:
        return InMemoryUpstream(record)

    provider = Provider(
        kind="in-memory",
        title="the in-memory test provider",
        build=build,
        upstream_action="in-memory-videos",
        calls_back=False,
    )
    registry.register(provider)
    yield record
    registry.unregister(provider)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The integration settings (a public URL is set) with pacing compressed for tests."""
    return settings.model_copy(
        update={
            "poll_first_delay": 0.05,
            "poll_min_interval": 0.05,
            "poll_max_interval": 0.2,
            "retry_base_seconds": 0.05,
        }
    )


@pytest.fixture
async def worker(engine: AsyncEngine, settings: Settings, in_memory) -> AsyncIterator[Worker]:
    """The real worker options, run in this process (signals stay with pytest)."""
    arq_worker = Worker(**{**worker_options(settings), "handle_signals": False})
    running = asyncio.create_task(arq_worker.async_run())
    try:
        yield arq_worker
    finally:
        running.cancel()  # stop taking jobs, let the running ones end, then shut down
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await asyncio.gather(*arq_worker.tasks.values(), return_exceptions=True)
        await arq_worker.close()


async def test_a_provider_registered_here_completes_a_video_end_to_end(
    admin: httpx.AsyncClient,
    client_for,
    grant,
    assert_ledger,
    engine: AsyncEngine,
    in_memory: InMemoryRecord,
    worker: Worker,
) -> None:
    models = (await admin.get("/v1/admin/config")).json()["models"]
    entry = {
        "id": MODEL,
        "provider": "in-memory",
        "provider_model": "mem-1",
        "max_images": 1,
        "image_roles": ["first_frame"],
        "price": PRICE,
    }
    put = await admin.put("/v1/admin/config", json={"models": [*models, entry]})
    assert put.status_code == 200, put.text
    acme = await client_for("acme")
    await grant("acme", "acme", 100)

    created = await acme.post(
        "/v1/videos", json={"prompt": "a fox", "model": MODEL, "images": [PNG_URI]}
    )
    assert created.status_code == 200, created.text
    video = await finished(acme, created.json()["id"])

    assert video["status"] == "completed", video
    assert video["video_bytes"] == len(in_memory.mp4)
    content = await acme.get(f"/v1/videos/{video['id']}/content", params={"redirect": "0"})
    assert content.content == in_memory.mp4
    balance, held, kinds = await credits(acme)
    assert (balance, held) == (100 - PRICE, 0)
    assert "capture" in kinds and "release" not in kinds
    await assert_ledger()

    [request] = in_memory.submitted
    assert request.model == "mem-1"
    assert request.images == [InlineImage(ImageRole.FIRST_FRAME, "image/png", PNG)]
    # A public URL is set, but this provider never calls back: no hook is sent.
    assert request.notify_hook is None
    assert in_memory.polled == ["mem-1"]
    async with engine.connect() as conn:
        action = await conn.scalar(
            text("SELECT upstream_action FROM video_tasks WHERE id = :id"), {"id": video["id"]}
        )
    assert action == "in-memory-videos"
