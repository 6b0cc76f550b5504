"""Bearer API-key authentication and the admin check, with the limits that go with them:
failed authentications per source address, requests per client (README, "Limits")."""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.requests import Request

from core import apikeys
from core.apikeys import Principal
from schemas.clock import utcnow
from schemas.config import RuntimeConfig
from schemas.problems import Code
from service import ratelimit
from service.context import Context, ctx
from service.errors import ProblemError
from service.ratelimit import Rule, client_address, rate_limited


@dataclass
class UncountedRequest:
    """A client's request :func:`authenticate` left to its handler to count (``defer``),
    so that the handler can count it in the same Redis round trip as a limit of its own
    (the create's per-user limit); :func:`count_uncounted` counts it if the handler did
    not (``due`` still True)."""

    rule: Rule
    client_id: str
    due: bool = True


def client_over(wait: int, rule: Rule) -> ProblemError:
    """The 429 for a client over its requests per minute."""
    return rate_limited(wait, f"This client is over its {rule.amount} requests per minute.")


async def authenticate(request: Request, *, defer: bool = False) -> Principal:
    """The request's principal, looked up once per request: a handler may call this again
    inside its own transaction (on SQLite a second lookup's ``last_used`` write would wait
    for that very transaction).

    A key this process does not know is looked up only while the caller's address is
    under its limit of keys looked up in vain (then a flood of bad keys costs no database
    work; a missing key costs none anyway); a known client then counts one request
    against its rate (admins are exempt). With ``defer``, a client this process has not
    seen refused is not counted here: ``request.state.uncounted`` holds an
    :class:`UncountedRequest` for the handler. Errors: 401 ``unauthorized``, 429
    ``rate_limited`` (with ``Retry-After``)."""
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
        if defer:
            wait = context.limits.refused(rule, principal.client_id)
            request.state.uncounted = UncountedRequest(rule, principal.client_id)
        else:
            wait = await context.limits.hit(rule, principal.client_id)
        if wait is not None:
            raise client_over(wait, rule)
    request.state.principal = principal
    return principal


async def count_uncounted(context: Context, uncounted: UncountedRequest | None) -> None:
    """Count the request :func:`authenticate` deferred, unless its handler already did;
    429 ``rate_limited`` if the client is over its rate."""
    if uncounted is None or not uncounted.due:
        return
    uncounted.due = False
    wait = await context.limits.hit(uncounted.rule, uncounted.client_id)
    if wait is not None:
        raise client_over(wait, uncounted.rule)


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
