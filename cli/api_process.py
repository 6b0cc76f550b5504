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


def build(settings: Settings) -> Starlette:
    """The app as ``google-video api`` serves it, in one process or several: the config
    test runs the worker's provider code in the API process."""
    from service.app import create_app
    from worker.upstream.check import check_connection

    return create_app(settings, upstream_check=check_connection)


def app() -> Starlette:
    """uvicorn's factory in a worker process: settings, logging and the deadline from the
    environment, then :func:`build`."""
    settings = Settings()
    configure(settings.log_format, settings.log_level)
    HeaderDeadline.header_timeout = settings.header_timeout_seconds
    return build(settings)
