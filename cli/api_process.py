"""What each of several API processes imports (``google-video api --workers N``): uvicorn
starts them with ``spawn``, so the app and the protocol class are named by import path
and built in the child, from the same environment as the parent's settings."""

from __future__ import annotations

from starlette.applications import Starlette

from cli.header_deadline import HeaderDeadlineProtocol
from core.logging import configure
from schemas.settings import Settings


class HeaderDeadline(HeaderDeadlineProtocol):
    """The header deadline of this process (set by :func:`app` before any connection)."""


def app() -> Starlette:
    """uvicorn's factory in a worker process: settings, logging and the deadline from the
    environment, then the app as ``google-video api`` builds it."""
    from service.app import create_app
    from worker.upstream.check import check_connection

    settings = Settings()
    configure(settings.log_format, settings.log_level)
    HeaderDeadline.header_timeout = settings.header_timeout_seconds
    return create_app(settings, upstream_check=check_connection)
