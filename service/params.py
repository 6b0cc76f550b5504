"""Query and path parameters, validated by the parameter models of ``schemas.api`` (the
same ones ``/openapi.json`` documents), so every endpoint answers the same problem for
the same mistake."""

from __future__ import annotations

import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from schemas.problems import Code
from service.errors import ProblemError, from_validation

P = TypeVar("P", bound=BaseModel)

# ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
_DIGITS = re.compile(r"[0-9]{1,18}")


def ascii_int(raw: str) -> int | None:
    """``raw`` as a non-negative integer if it is 1-18 ASCII digits, else None."""
    return int(raw) if _DIGITS.fullmatch(raw) else None


def query(model: type[P], request: Request) -> P:
    """The query string as ``model`` (the last value of a repeated name wins); a 400
    problem naming each bad parameter otherwise (``invalid_cursor`` for cursors)."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise from_validation(exc) from None


def path(model: type[P], request: Request, *, not_found: str | None = None) -> P:
    """The path parameters as ``model``. With ``not_found``, a value that cannot be one of
    ours (a malformed id) is a 404 problem with that detail, as an unknown one would be."""
    try:
        return model.model_validate(request.path_params)
    except ValidationError as exc:
        if not_found is not None:
            raise ProblemError(Code.NOT_FOUND, not_found) from None
        raise from_validation(exc) from None
