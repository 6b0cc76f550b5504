"""Serving the API under uvicorn with uvloop."""

from __future__ import annotations

import uvicorn

from cli.header_deadline import with_header_timeout
from schemas.settings import Settings


def serve_api(settings: Settings, host: str, port: int) -> None:
    from service.app import create_app
    from worker.upstream.check import check_connection

    uvicorn.run(
        # The config test runs the worker's provider code in this process.
        create_app(settings, upstream_check=check_connection),
        host=host,
        port=port,
        loop="uvloop",
        # httptools, with a deadline on request headers (README, "Limits").
        http=with_header_timeout(settings.header_timeout_seconds),
        log_level="warning",
        # Our logging (core/logging.py) renders uvicorn's records; the access log is ours
        # (service/access_log.py), one line per request.
        log_config=None,
        access_log=False,
        # X-Forwarded-For is believed only from these peers (the proxy in front).
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=10,
    )
