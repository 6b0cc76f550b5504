"""/v1/credits/{user}: balance and ledger; admin grants and adjustments."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.apikeys import Principal
from core.repo import credits
from schemas.api import USER_PATTERN, CreditEntryOut, CreditsOut, Grant
from schemas.problems import Code
from service import params
from service.auth import authenticate, require_admin
from service.body import json_object, parse
from service.context import ctx
from service.errors import ProblemError

_USER = re.compile(USER_PATTERN)


def _account(request: Request, principal: Principal) -> tuple[str, str]:
    """(client, user): admins may name another client with ``?client=``."""
    user = request.path_params["user"]
    if not _USER.match(user):
        raise ProblemError(
            Code.VALIDATION_ERROR, "user must be 1-200 characters of [A-Za-z0-9._:@+-]."
        )
    client = request.query_params.get("client")
    if client is not None and not principal.is_admin:
        raise ProblemError(Code.FORBIDDEN, "Only admins may name another client.")
    return client or principal.client_id, user


async def show(request: Request) -> Response:
    principal = await authenticate(request)
    client, user = _account(request, principal)
    limit = params.limit(request.query_params)
    before = params.int_cursor(request.query_params, "before")
    async with ctx(request).engine.connect() as conn:
        balance = await credits.balance_of(conn, client, user)
        rows = await credits.recent_entries(conn, client, user, limit=limit, before=before)
    body = CreditsOut(
        user=user,
        balance=balance.balance,
        held=balance.held,
        entries=[
            CreditEntryOut(
                id=r.id,
                kind=r.kind,
                amount=r.amount,
                balance_after=r.balance_after,
                held_after=r.held_after,
                task_id=r.task_id,
                reason=r.reason,
                at=int(r.at.timestamp()),
            )
            for r in rows[:limit]
        ],
        has_more=len(rows) > limit,
    )
    return JSONResponse(body.model_dump(mode="json"))


async def grant(request: Request) -> Response:
    principal = await require_admin(request)
    client, user = _account(request, principal)
    body = parse(Grant, await json_object(request, 64 * 1024))
    if body.amount == 0:
        raise ProblemError(Code.INVALID_GRANT, "amount must not be zero.")
    async with ctx(request).engine.begin() as conn:
        after = await credits.grant(conn, client, user, body.amount, body.reason)
        if after is None:
            have = await credits.balance_of(conn, client, user)
            raise ProblemError(
                Code.INVALID_GRANT,
                f"Adjusting by {body.amount} would take the balance ({have.balance}) below zero.",
                balance=have.balance,
            )
    return await show(request)


routes = [
    Route("/v1/credits/{user}", show, methods=["GET"]),
    Route("/v1/credits/{user}/grants", grant, methods=["POST"]),
]
