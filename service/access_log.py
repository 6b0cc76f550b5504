"""The access log: one ``http_request`` line per request (uvicorn's own is off).

Fields: ``method``, ``route`` (the route *template*, ``/v1/videos/{video_id}``, never the
raw path: a callback's path carries its token), ``status``, ``duration_ms``,
``client_id`` (the authenticated client; None before or without authentication),
``remote`` (the peer, or what a trusted proxy put in X-Forwarded-For), and from the
request's log context ``request_id``. Probes and scrapes log at DEBUG.
"""

from __future__ import annotations

import time

import structlog
from starlette.types import Scope

from core.apikeys import Principal
from service.metrics import route_template
from service.observer import RequestObserver

log = structlog.get_logger("google_video.access")

# Polled every few seconds by orchestrators and Prometheus: shown at LOG_LEVEL=DEBUG.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
# No answer was sent: the client went away first (nginx's "client closed request").
NO_ANSWER = 499


class AccessLog(RequestObserver):
    """Inside the request-id middleware (its lines carry the id) and outside the
    last-resort handler (a 500 it answers is logged as sent)."""

    unanswered = NO_ANSWER

    def record(self, scope: Scope, status: int, started: float) -> None:
        route = route_template(scope)
        principal = scope.get("state", {}).get("principal")
        peer = scope.get("client")
        write = log.debug if route in QUIET_ROUTES else log.info
        write(
            "http_request",
            method=scope["method"],
            route=route,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            client_id=principal.client_id if isinstance(principal, Principal) else None,
            remote=peer[0] if peer else None,
        )
