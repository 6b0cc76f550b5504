"""Bearer API-key authentication and the admin check."""

from __future__ import annotations

import time

from starlette.requests import Request

from core import apikeys
from core.apikeys import Principal
from schemas.clock import utcnow
from schemas.problems import Code
from service.context import ctx
from service.errors import ProblemError


async def authenticate(request: Request) -> Principal:
    """The request's principal, looked up once per request: a handler may call this again
    inside its own transaction (on SQLite a second lookup's ``last_used`` write would wait
    for that very transaction)."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ProblemError(Code.UNAUTHORIZED, "Send 'Authorization: Bearer <API key>'.")
    context = ctx(request)
    key_hash = apikeys.hash_key(key.strip())
    now = time.monotonic()
    hit, principal = context.keys.get(key_hash, now)
    if not hit:
        async with context.engine.begin() as conn:
            principal = await apikeys.authenticate(conn, key.strip())
            if principal is not None:
                await apikeys.mark_used(conn, principal.key_id, utcnow())
        context.keys.put(key_hash, principal, now)
    if principal is None:
        raise ProblemError(Code.UNAUTHORIZED, "The API key is not valid or has been revoked.")
    request.state.principal = principal
    return principal


async def require_admin(request: Request) -> Principal:
    principal = await authenticate(request)
    if not principal.is_admin:
        raise ProblemError(Code.FORBIDDEN, "This endpoint needs an admin API key.")
    return principal
