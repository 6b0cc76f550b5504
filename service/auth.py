"""Bearer API-key authentication and the admin check, with the limits that go with them:
failed authentications per source address, requests per client (README, "Limits")."""

from __future__ import annotations

import time

from starlette.requests import Request

from core import apikeys
from core.apikeys import Principal
from schemas.clock import utcnow
from schemas.config import RuntimeConfig
from schemas.problems import Code
from service import ratelimit
from service.context import Context, ctx
from service.errors import ProblemError
from service.ratelimit import client_address, rate_limited


async def authenticate(request: Request) -> Principal:
    """The request's principal, looked up once per request: a handler may call this again
    inside its own transaction (on SQLite a second lookup's ``last_used`` write would wait
    for that very transaction).

    A key this process does not know is looked up only while the caller's address is
    under its limit of keys looked up in vain (then a flood of bad keys costs no database
    work; a missing key costs none anyway); a known client then counts one request
    against its rate (admins are exempt)."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    context = ctx(request)
    config = await context.config.get()
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ProblemError(Code.UNAUTHORIZED, "Send 'Authorization: Bearer <API key>'.")
    key_hash = apikeys.hash_key(key.strip())
    now = time.monotonic()
    hit, principal = context.keys.get(key_hash, now)
    if not hit:
        wait = context.limits.refused(ratelimit.failed_auth(config), client_address(request))
        if wait is not None:
            raise rate_limited(wait, "Too many failed authentications from this address.")
        async with context.engine.begin() as conn:
            principal = await apikeys.authenticate(conn, key.strip())
            if principal is not None:
                await apikeys.mark_used(conn, principal.key_id, utcnow())
        context.keys.put(key_hash, principal, now)
    if principal is None:
        await _failed(context, config, request)
        raise ProblemError(Code.UNAUTHORIZED, "The API key is not valid or has been revoked.")
    if not principal.is_admin:
        rule = ratelimit.client_requests(config)
        wait = await context.limits.hit(rule, principal.client_id)
        if wait is not None:
            raise rate_limited(wait, f"This client is over its {rule.amount} requests per minute.")
    request.state.principal = principal
    return principal


async def _failed(context: Context, config: RuntimeConfig, request: Request) -> None:
    """Count a key looked up in vain for the caller's address; 429 once it is over."""
    wait = await context.limits.hit(ratelimit.failed_auth(config), client_address(request))
    if wait is not None:
        raise rate_limited(wait, "Too many failed authentications from this address.")


async def require_admin(request: Request) -> Principal:
    principal = await authenticate(request)
    if not principal.is_admin:
        raise ProblemError(Code.FORBIDDEN, "This endpoint needs an admin API key.")
    return principal
