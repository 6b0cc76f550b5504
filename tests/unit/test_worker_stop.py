"""The worker's stop: the ARQ loop ends even when a cancellation of it is lost.

On Python 3.11 ``asyncio.wait_for`` returns its inner future's result, dropping the
cancellation, when the cancel arrives after that future finished but before ``wait_for``
woke up (CPython gh-86296). redis-py sends every command through such a ``wait_for``
(``socket_timeout``), so one ``cancel()`` of the ARQ loop was now and then lost and the
worker polled on after SIGTERM until it was SIGKILLed (30 s in the e2e teardowns).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from schemas.settings import Settings
from worker.health import WorkerHealth
from worker.supervisor import Supervisor


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for keeps the cancel since 3.12")
async def test_wait_for_loses_a_cancel_that_arrives_as_its_future_finishes() -> None:
    loop = asyncio.get_running_loop()
    inner: asyncio.Future[str] = loop.create_future()
    task = asyncio.create_task(asyncio.wait_for(inner, 10))
    await asyncio.sleep(0)  # the task now waits for ``inner``
    inner.set_result("answer")  # a Redis reply has arrived...
    task.cancel()  # ...and the SIGTERM's cancel comes before wait_for has woken up
    assert await task == "answer"  # no CancelledError: the cancel is gone


async def test_the_drain_stops_an_arq_loop_that_lost_its_cancellation(tmp_path: Path) -> None:
    lost = asyncio.Event()

    async def arq_loop() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            lost.set()  # as wait_for does above: the loop polls on
        await asyncio.sleep(30)

    main_task = asyncio.create_task(arq_loop())
    await asyncio.sleep(0)
    supervisor = Supervisor(Settings(environment="test", data_dir=tmp_path), WorkerHealth())
    supervisor.worker = SimpleNamespace(draining=False, main_task=main_task, tasks={})  # type: ignore[assignment]
    drain = asyncio.create_task(supervisor._drain())
    # Not wait_for: its own cancel at the deadline would end the loop for the drain.
    done, _ = await asyncio.wait({drain}, timeout=2)
    for task in (drain, main_task):
        task.cancel()
    await supervisor.redis.aclose(close_connection_pool=True)
    assert drain in done, "the drain waits for an ARQ loop that runs on"
    assert lost.is_set() and main_task.cancelled()
