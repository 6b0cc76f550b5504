"""The operator console (README, "Operator console"): server-rendered pages under
``/console`` for an admin signed in once with an admin key. Every response passes
`security.ConsoleGuard` (headers, HTML problems, cross-site checks, the session cookie)."""

from __future__ import annotations

from pathlib import Path

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from service.console import config, credits, health, login, media, videos
from service.console.security import ConsoleGuard

STATIC = Path(__file__).parent / "static"


async def _home(_request: Request) -> Response:
    return RedirectResponse("/console/videos", status_code=303)


ROUTES = [
    Route("/", _home),
    Route("/login", login.show, methods=["GET"]),
    Route("/login", login.submit, methods=["POST"]),
    Route("/logout", login.logout, methods=["POST"]),
    Route("/videos", videos.list_page, methods=["GET"]),
    Route("/videos/{video_id}", videos.video_page, methods=["GET"]),
    Route("/videos/{video_id}/media", media.video, methods=["GET"]),
    Route("/videos/{video_id}/thumbnail", media.thumbnail, methods=["GET"]),
    Route("/videos/{video_id}/cancel", videos.cancel, methods=["POST"]),
    Route("/videos/{video_id}/replay", videos.replay, methods=["POST"]),
    Route("/credits", credits.show, methods=["GET"]),
    Route("/credits/grant", credits.grant, methods=["POST"]),
    Route("/config", config.show, methods=["GET"]),
    Route("/config", config.save, methods=["POST"]),
    Route("/config/test", config.test, methods=["POST"]),
    Route("/health", health.show, methods=["GET"]),
    Mount("/static", StaticFiles(directory=STATIC), name="console-static"),
]


def routes() -> list[BaseRoute]:
    """The console, for the API's routes: ``/console`` and ``/console/...``."""
    guard = [Middleware(ConsoleGuard)]
    return [
        Route("/console", _home, methods=["GET"], middleware=guard),
        Mount("/console", routes=ROUTES, middleware=guard),
    ]
