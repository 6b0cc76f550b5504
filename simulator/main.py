"""Run the simulator: ``python -m simulator.main --host 127.0.0.1 --port 8090 --api-key KEY``.

``--quirks "[sim:url_at=result_url] [sim:lowercase]"`` applies those directives to every
task (``simulator.quirks``); it defaults to ``GOOGLE_VIDEO_SIM_QUIRKS``.

Environment variables (all optional):

- ``GOOGLE_VIDEO_SIM_TIME_SCALE``: float > 0 multiplying every task duration (default 1.0)
- ``GOOGLE_VIDEO_SIM_SUBMIT_TIMEOUT_DELAY``: the longest a ``[sim:submit=timeout]`` answer
  is held back waiting for the client to hang up (default 600, far beyond any client
  timeout, so the submit is ambiguous whatever the client's timeout is)
- ``GOOGLE_VIDEO_SIM_NOTIFY_DELAY``: seconds between a task finishing and its notify_hook
  POST (default 0)
- ``GOOGLE_VIDEO_SIM_NOTIFY_FAILURE_RATE``: probability in [0, 1] that a callback is
  dropped (default 0)
- ``GOOGLE_VIDEO_SIM_VIDEO_BYTES``: pad every served MP4 to this many bytes (default: the
  rendered size, about 50-150 kB)
- ``GOOGLE_VIDEO_SIM_MAX_VIDEO_BYTES``: the longest file served; ``[sim:size]`` and
  ``VIDEO_BYTES`` are clamped to it (default 52428800, 50 MiB)
- ``GOOGLE_VIDEO_SIM_QUIRKS``: directives applied to every task (default none)
- ``GOOGLE_VIDEO_SIM_SEED``: integer seeding the durations and the callback drops
- ``GOOGLE_VIDEO_SIM_API_KEY``: the default of ``--api-key`` (default ``sim-key``)
"""

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import structlog
import uvicorn

from simulator.app import create_app
from simulator.files import DEFAULT_MAX_VIDEO_BYTES
from simulator.quirks import normalise_directives

ENV_PREFIX = "GOOGLE_VIDEO_SIM_"
DEFAULT_API_KEY = "sim-key"
DEFAULT_PORT = 8090

log = structlog.get_logger("simulator")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EnvSettings:
    time_scale: float = 1.0
    submit_timeout_delay: float = 600.0
    notify_delay: float = 0.0
    notify_failure_rate: float = 0.0
    video_bytes: int | None = None
    seed: int | None = None
    quirks: str = ""
    max_video_bytes: int = DEFAULT_MAX_VIDEO_BYTES


def settings_from_env(environ: Mapping[str, str]) -> EnvSettings:
    """Read the ``GOOGLE_VIDEO_SIM_*`` variables; a malformed value raises ValueError."""

    def read(name: str, parse: Callable[[str], T], default: T) -> T:
        text = environ.get(ENV_PREFIX + name, "").strip()
        if not text:
            return default
        try:
            return parse(text)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{name}={text!r} is not valid") from None

    return EnvSettings(
        time_scale=read("TIME_SCALE", float, 1.0),
        submit_timeout_delay=read("SUBMIT_TIMEOUT_DELAY", float, 600.0),
        notify_delay=read("NOTIFY_DELAY", float, 0.0),
        notify_failure_rate=read("NOTIFY_FAILURE_RATE", float, 0.0),
        video_bytes=read("VIDEO_BYTES", int, None),
        max_video_bytes=read("MAX_VIDEO_BYTES", int, DEFAULT_MAX_VIDEO_BYTES),
        seed=read("SEED", int, None),
        quirks=read("QUIRKS", normalise_directives, ""),
    )


def run(host: str, port: int, api_key: str, quirks: str | None = None) -> None:
    """Serve the simulator until interrupted, configured from the environment; ``quirks``
    (directives) replaces ``GOOGLE_VIDEO_SIM_QUIRKS`` when given."""
    settings = settings_from_env(os.environ)
    app = create_app(
        api_key,
        time_scale=settings.time_scale,
        rng_seed=settings.seed,
        submit_timeout_delay=settings.submit_timeout_delay,
        notify_delay=settings.notify_delay,
        notify_failure_rate=settings.notify_failure_rate,
        video_bytes=settings.video_bytes,
        max_video_bytes=settings.max_video_bytes,
        quirks=settings.quirks if quirks is None else quirks,
    )
    log.info("simulator_listening", url=f"http://{host}:{port}", time_scale=settings.time_scale)
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        log_level="warning",
        # The process's own logging renders uvicorn's records; no access log.
        log_config=None,
        access_log=False,
        lifespan="on",
        # Held-back [sim:submit=timeout] answers must not stall shutdown.
        timeout_graceful_shutdown=1,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Aggregator gateway simulator for Veo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--api-key", default=os.environ.get(ENV_PREFIX + "API_KEY", DEFAULT_API_KEY)
    )
    parser.add_argument("--quirks", default=None, help="[sim:...] directives applied to every task")
    args = parser.parse_args(argv)
    run(args.host, args.port, args.api_key, args.quirks)


if __name__ == "__main__":
    main()
