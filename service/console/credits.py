"""The credits page: find an account by client and user; its balance, held credits and
ledger (each entry linked to its task); the grant/adjust form (reason required), through
the API's grant."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.repo import credits
from schemas.api import CreditsQuery, Grant
from schemas.fields import ClientName, UserName
from service.console import render, session
from service.console.forms import integer, posted
from service.context import ctx
from service.errors import ProblemError, from_validation
from service.routes.credits import apply_grant


class AccountQuery(CreditsQuery):
    """``CreditsQuery`` (limit, before, client) plus the user; an empty field is left out."""

    user: UserName | None = None


class Account(BaseModel):
    model_config = ConfigDict(extra="ignore")

    client: ClientName
    user: UserName


def _query(request: Request) -> AccountQuery:
    given = {k: v for k, v in request.query_params.items() if v != ""}
    try:
        return AccountQuery.model_validate(given)
    except ValidationError as exc:
        raise from_validation(exc) from None


async def show(request: Request) -> Response:
    await session.admin(request)
    return await _page(request, _query(request))


async def _page(
    request: Request,
    query: AccountQuery,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    account: dict[str, Any] | None = None
    older = None
    if query.client and query.user:
        async with ctx(request).engine.connect() as conn:
            balance = await credits.balance_of(conn, query.client, query.user)
            lines = await credits.account_ledger(
                conn, query.client, query.user, before_id=query.before, limit=query.limit + 1
            )
        account = {"balance": balance.balance, "held": balance.held, "lines": lines[: query.limit]}
        if len(lines) > query.limit:
            last = lines[query.limit - 1].id
            cursor = {"client": query.client, "user": query.user, "before": last}
            older = "/console/credits?" + urlencode(cursor)
    return render.page(
        request,
        "credits.html",
        status=status,
        query=query,
        account=account,
        older=older,
        errors=errors or {},
        form=form or {},
        notice="The grant was recorded." if request.query_params.get("done") else "",
        once=secrets.token_urlsafe(16),
    )


async def grant(request: Request) -> Response:
    """Validate as ``POST /v1/credits/{user}/grants`` does (``Grant``), errors next to
    the fields; then the API's grant, and back to the account."""
    _, fields = await posted(request)
    try:
        account = Account.model_validate(fields)
    except ValidationError as exc:
        raise from_validation(exc) from None
    query = AccountQuery(client=account.client, user=account.user)
    target = urlencode({"client": account.client, "user": account.user, "done": "1"})
    once = _once_key(fields.get("once"))
    queue = ctx(request).queue
    if once is not None and not await queue.set(once, b"1", ex=ONCE_SECONDS, nx=True):
        # The same form posted again (a double click, a resent POST): granted once.
        return RedirectResponse(f"/console/credits?{target}", status_code=303)
    try:
        given = {"amount": integer(fields.get("amount")), "reason": fields.get("reason")}
        body = Grant.model_validate(given)
        await apply_grant(ctx(request), account.client, account.user, body)
    except ValidationError as exc:
        await _forget(request, once)
        errors = {str(e["loc"][0]): e["msg"] for e in exc.errors(include_url=False) if e["loc"]}
        return await _page(request, query, status=400, errors=errors, form=fields)
    except ProblemError as exc:
        await _forget(request, once)
        errors = {"amount": exc.detail}
        return await _page(request, query, status=exc.status, errors=errors, form=fields)
    except Exception:
        await _forget(request, once)
        raise
    return RedirectResponse(f"/console/credits?{target}", status_code=303)


# How long a grant form's one-time id is remembered (a page left open longer may grant
# again, which a new render would anyway).
ONCE_SECONDS = 24 * 3600


def _once_key(once: str | None) -> str | None:
    """The Redis key of a grant form's one-time id (each render of the form has its own),
    None for a post without one (a script posting the form's fields itself)."""
    if not once:
        return None
    return "console:grant-once:" + hashlib.sha256(once.encode()).hexdigest()


async def _forget(request: Request, once: str | None) -> None:
    """A grant that did not happen frees its form's id: the form may be corrected and
    posted again."""
    if once is not None:
        await ctx(request).queue.delete(once)
