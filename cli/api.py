"""Serving the API under uvicorn with uvloop."""

from __future__ import annotations

from typing import Any

import uvicorn

from cli.header_deadline import with_header_timeout
from core.metrics import prepare_multiprocess
from schemas.settings import Settings


def serve_api(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Serve until SIGTERM/SIGINT. ``workers`` > 1 runs that many processes on the one port
    (uvicorn's supervisor), each built by ``cli/api_process.py``; their metrics go through
    prometheus-client's multiprocess files (``core.metrics.prepare_multiprocess``)."""
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "log_level": "warning",
        # Our logging (core/logging.py) renders uvicorn's records; the access log is ours
        # (service/access_log.py), one line per request.
        "log_config": None,
        "access_log": False,
        # X-Forwarded-For is believed only from these peers (the proxy in front).
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "timeout_graceful_shutdown": 10,
    }
    if workers > 1:
        prepare_multiprocess()
        uvicorn.run(
            "cli.api_process:app",
            factory=True,
            http="cli.api_process:HeaderDeadline",
            workers=workers,
            **common,
        )
        return
    from cli.api_process import build

    uvicorn.run(
        build(settings),
        # httptools, with a deadline on request headers (README, "Limits").
        http=with_header_timeout(settings.header_timeout_seconds),
        **common,
    )
