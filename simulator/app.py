"""The simulator's Starlette application."""

import contextlib
import math
import random
import time
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette

from simulator.context import Simulator
from simulator.files import DEFAULT_MAX_VIDEO_BYTES
from simulator.notify import Notifier
from simulator.quirks import Quirks, normalise_directives
from simulator.render_cache import RenderCache
from simulator.routes import ROUTES
from simulator.state import TaskStore
from simulator.timeline import Clock
from simulator.video import render_video

NOTIFY_TIMEOUT = httpx.Timeout(10.0)


def create_app(
    api_key: str,
    *,
    time_scale: float = 1.0,
    clock: Clock = time.time,
    rng_seed: int | None = None,
    submit_timeout_delay: float = 600.0,
    notify_delay: float = 0.0,
    notify_failure_rate: float = 0.0,
    video_bytes: int | None = None,
    max_video_bytes: int = DEFAULT_MAX_VIDEO_BYTES,
    video: bytes | None = None,
    notify_transport: httpx.AsyncBaseTransport | None = None,
    quirks: str = "",
) -> Starlette:
    """A gateway simulator answering to ``Authorization: Bearer <api_key>``.

    ``time_scale`` multiplies every task duration; ``clock`` returns Unix seconds and
    can be a fake in tests; ``submit_timeout_delay`` bounds how long a
    ``[sim:submit=timeout]`` answer waits for the client to hang up; ``video`` replaces
    the MP4 rendered for each task from its request and ``video_bytes`` pads every MP4;
    no padded file is longer than ``max_video_bytes`` (``[sim:size]`` and ``video_bytes``
    are clamped to it);
    ``quirks`` are directives applied to every task (``simulator.quirks``; a bad one
    raises DirectiveError); ``notify_transport`` carries the notify_hook callbacks
    (tests pass an ``httpx.MockTransport``). The callbacks only run inside the app's
    lifespan, which uvicorn runs and ``httpx.ASGITransport`` does not.
    """
    _check(api_key, time_scale, submit_timeout_delay, notify_delay, notify_failure_rate)
    if video_bytes is not None and video_bytes < 0:
        raise ValueError("video_bytes must be non-negative")
    if max_video_bytes <= 0:
        raise ValueError("max_video_bytes must be positive")
    startup = Quirks(directives=normalise_directives(quirks))
    simulator = Simulator(
        api_key=api_key,
        clock=clock,
        rng=random.Random(rng_seed),
        time_scale=time_scale,
        submit_timeout_delay=submit_timeout_delay,
        video=video,
        video_bytes=video_bytes,
        max_video_bytes=max_video_bytes,
        store=TaskStore(),
        renders=RenderCache(render_video),
        quirks=startup,
        startup_quirks=startup,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(transport=notify_transport, timeout=NOTIFY_TIMEOUT) as client:
            notifier = Notifier(
                store=simulator.store,
                client=client,
                clock=clock,
                rng=simulator.rng,
                delay=notify_delay,
                failure_rate=notify_failure_rate,
            )
            async with notifier.running():
                yield

    app = Starlette(routes=ROUTES, lifespan=lifespan)
    app.state.simulator = simulator
    return app


def _check(
    api_key: str,
    time_scale: float,
    submit_timeout_delay: float,
    notify_delay: float,
    notify_failure_rate: float,
) -> None:
    if not api_key:
        raise ValueError("api_key must not be empty")
    if not (math.isfinite(time_scale) and time_scale > 0):
        raise ValueError("time_scale must be a positive number")
    if not (submit_timeout_delay >= 0 and notify_delay >= 0):
        raise ValueError("delays must be non-negative")
    if not 0 <= notify_failure_rate <= 1:
        raise ValueError("notify_failure_rate must be between 0 and 1")
