"""Serving the API under uvicorn with uvloop."""

from __future__ import annotations

import uvicorn

from schemas.settings import Settings


def serve_api(settings: Settings, host: str, port: int) -> None:
    from service.app import create_app

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
