"""Webhook URLs (endpoints and a create's ``webhook_url``) are checked when given, with
the egress policy the worker applies again at every delivery: a URL no delivery could
reach is a 400 now, not three days of refused attempts."""

from __future__ import annotations

import structlog

from core import egress
from schemas.problems import Code
from schemas.settings import Settings
from service.errors import ProblemError

log = structlog.get_logger(__name__)

# The lookup happens while the client waits; a name that has not resolved by then is
# refused like one that does not exist (the client may try again).
LOOKUP_SECONDS = 3.0


async def require_allowed(settings: Settings, url: str, field: str) -> None:
    """Return if egress may reach ``url``; else a 400 ``url_not_allowed`` naming ``field``
    whose text is the same whatever the reason (a missing name, an internal address, http,
    a resolver that timed out), so the answer tells nothing about internal names.

    A name that does not resolve is refused: a receiver should exist before it is named.
    """
    try:
        await egress.check(
            url, egress.Policy.from_settings(settings), lookup_seconds=LOOKUP_SECONDS
        )
    except egress.EgressError as exc:
        log.info("webhook_url_refused", field=field, reason=getattr(exc, "reason", str(exc)))
        raise ProblemError(
            Code.URL_NOT_ALLOWED,
            f"{field}: {egress.REFUSED}",
            errors=[{"field": field, "message": egress.REFUSED}],
        ) from None
