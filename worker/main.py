"""``google-video worker``: one ARQ worker process on uvloop."""

from __future__ import annotations

import asyncio

import uvloop
from arq.worker import Worker

from schemas.settings import Settings
from worker.options import worker_options


def run_worker(settings: Settings) -> int:
    # arq's CLI does not install uvloop; the loop must exist before the Worker grabs it.
    asyncio.set_event_loop(uvloop.new_event_loop())
    Worker(**worker_options(settings)).run()
    return 0
