"""/v1/credits/{user}: balance and ledger; admin grants and adjustments."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.apikeys import RESERVED_CLIENTS, Principal
from core.presenter import account_of
from core.repo import credits
from core.repo.credits import Balance
from schemas.api import CreditsOut, CreditsQuery, Grant, UserPath
from schemas.fields import INT32_MAX
from schemas.problems import Code
from service import params
from service.auth import authenticate, require_admin
from service.body import json_object, parse
from service.context import Context, ctx
from service.contract import Operation, Reply
from service.errors import ProblemError


def _account(request: Request, principal: Principal, query: CreditsQuery) -> tuple[str, str]:
    """(client, user): admins may name another client with ``?client=``, never a reserved
    id other than their own (``ADMIN``, ``System``: accounts no key could ever use). A
    client with no key yet is allowed: credits may be granted before its first key."""
    user = params.path(UserPath, request).user
    if query.client is not None and not principal.is_admin:
        raise ProblemError(Code.FORBIDDEN, "Only admins may name another client.")
    client = query.client or principal.client_id
    if client != principal.client_id and client.lower() in RESERVED_CLIENTS:
        raise ProblemError(
            Code.VALIDATION_ERROR, f"{client!r} is a reserved client id; no client key uses it."
        )
    return client, user


async def show(request: Request) -> Response:
    principal = await authenticate(request)
    query = params.query(CreditsQuery, request)
    client, user = _account(request, principal, query)
    limit, before = query.limit, query.before
    async with ctx(request).engine.connect() as conn:
        balance = await credits.balance_of(conn, client, user)
        rows = await credits.recent_entries(conn, client, user, limit=limit, before=before)
    body = account_of(user, balance, rows, limit=limit)
    return JSONResponse(body.model_dump(mode="json"))


async def grant(request: Request) -> Response:
    principal = await require_admin(request)
    client, user = _account(request, principal, params.query(CreditsQuery, request))
    body = parse(Grant, await json_object(request, 64 * 1024))
    await apply_grant(ctx(request), client, user, body)
    return await show(request)


async def apply_grant(context: Context, client: str, user: str, body: Grant) -> Balance:
    """Grant ``body.amount`` (negative: adjust down) to the account, with its reason (the
    API's grant and the console's); the balance after it. A 400 ``invalid_grant`` problem
    for zero, a balance that would go below zero or past the ceiling."""
    if body.amount == 0:
        raise ProblemError(Code.INVALID_GRANT, "amount must not be zero.")
    async with context.engine.begin() as conn:
        after = await credits.grant(conn, client, user, body.amount, body.reason)
        if after is None:
            have = await credits.balance_of(conn, client, user)
            if body.amount > 0:
                raise ProblemError(
                    Code.INVALID_GRANT,
                    f"Granting {body.amount} would take the account past {INT32_MAX} credits"
                    f" (balance {have.balance}, held {have.held}).",
                    balance=have.balance,
                )
            raise ProblemError(
                Code.INVALID_GRANT,
                f"Adjusting by {body.amount} would take the balance ({have.balance}) below zero.",
                balance=have.balance,
            )
    return after


operations = [
    Operation(
        "GET",
        "/v1/credits/{user}",
        show,
        "A user's balance, held credits and ledger entries, newest first",
        "credits",
        (Reply(200, "The account.", CreditsOut),),
        path_params=UserPath,
        query=CreditsQuery,
        problems=(Code.INVALID_CURSOR, Code.FORBIDDEN),
    ),
    Operation(
        "POST",
        "/v1/credits/{user}/grants",
        grant,
        "Grant credits to a user (negative: adjust down, never below zero)",
        "credits",
        (Reply(200, "The account after the grant.", CreditsOut),),
        auth="admin",
        path_params=UserPath,
        query=CreditsQuery,
        body=Grant,
        problems=(Code.INVALID_GRANT, Code.INVALID_CURSOR),
    ),
]
