"""Every console POST goes through `posted`: the form read (bounded), its CSRF token
compared with the session's in constant time, a 403 problem page otherwise."""

from __future__ import annotations

import re

from starlette.formparsers import MultiPartException
from starlette.requests import Request

from schemas.problems import Code
from service.body import limited
from service.console import session
from service.console.session import Session
from service.errors import ProblemError

MAX_FORM_BYTES = 256 * 1024
_INTEGER = re.compile(r"-?[0-9]{1,18}")
CSRF_FIELD = "csrf"


async def form_of(request: Request) -> dict[str, str]:
    """The posted fields (urlencoded or multipart, text only; a repeated name keeps its
    last value)."""
    try:
        async with limited(request, MAX_FORM_BYTES).form(
            max_files=0, max_fields=1000, max_part_size=MAX_FORM_BYTES
        ) as form:
            return {name: value for name, value in form.multi_items() if isinstance(value, str)}
    except (ValueError, KeyError, MultiPartException) as exc:
        raise ProblemError(Code.VALIDATION_ERROR, f"Malformed form: {exc}") from None


async def posted(request: Request) -> tuple[Session, dict[str, str]]:
    """The logged-in admin session and the form it posted with the right CSRF token.
    Raises `session.LoginRequired` without a session, a 403 problem for a bad token."""
    current = await session.admin(request)
    fields = await form_of(request)
    if not session.csrf_ok(current, fields.get(CSRF_FIELD)):
        raise ProblemError(Code.FORBIDDEN, "The form's CSRF token is missing or wrong.")
    return current, fields


def integer(raw: str | None) -> int | str | None:
    """A form field as an integer when it is one (the API's models are strict: a string
    stays a string, which they refuse with their own message)."""
    if raw is not None and _INTEGER.fullmatch(raw.strip()):
        return int(raw.strip())
    return raw
