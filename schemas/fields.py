"""Field types for every value that crosses the API boundary, bounded by what BOTH
databases can store: PostgreSQL refuses NUL in text and integers beyond a column's range
that SQLite would keep, so each type refuses them up front with a 400, on either backend.

Each is an ``Annotated`` type whose constraints appear in the JSON schema (and so in
``/openapi.json``): the document and the validation cannot drift apart.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, Strict

# The range of an INTEGER column on PostgreSQL (SQLite stores 64 bits).
INT32_MAX = 2**31 - 1

# No NUL anywhere (PostgreSQL text cannot hold it); in JSON-schema (ECMA 262), Rust-regex
# (pydantic) and Python syntax alike.
NO_NUL = r"^[^\u0000]*$"
# A single line: no control characters at all (C0, DEL, C1).
ONE_LINE = r"^[^\u0000-\u001f\u007f-\u009f]*$"

# One user-name rule everywhere a user is named (body, path, query): these characters
# only, so a name can be put in a URL path and a log line as it is, and not only dots
# ("." and ".." are not names a path can carry).
_NAME = r"[A-Za-z0-9._:@+-]*[A-Za-z0-9_:@+-][A-Za-z0-9._:@+-]*"
USER_PATTERN = rf"^{_NAME}$"
# Client ids (the tenant an API key acts for) follow the same rule, up to 100 characters.
CLIENT_PATTERN = USER_PATTERN
USER_MAX, CLIENT_MAX = 200, 100


# A callback token (core.callback): ``<task id>.<32 hex digits of an HMAC>``.
CALLBACK_TOKEN = r"([A-Za-z0-9_-]{1,100})\.([0-9a-f]{32})"  # noqa: S105 (a pattern)


def issued_id(prefix: str) -> Any:
    """The constraint of an id we issue with ``prefix`` (``core.ids.new_id``: ``video_``
    and hex digits), for ``Annotated[str, issued_id("video")]``."""
    return Field(pattern=rf"^{prefix}_[0-9a-f]{{1,60}}$", max_length=64)


Text = Annotated[str, Field(pattern=NO_NUL)]
"""Free text that may span lines (prompt, metadata values): anything but NUL."""

Line = Annotated[str, Field(pattern=ONE_LINE)]
"""One line of text (description, reason, metadata keys): no control characters."""


def _not_blank(text: str) -> str:
    # Separators (Z*) and format/control characters (C*: zero-width space, BOM, bidi
    # marks) show nothing: at least one character must be something else.
    if all(unicodedata.category(char)[0] in "ZC" for char in text):
        raise ValueError("must contain more than white space and invisible characters")
    return text


Reason = Annotated[Line, Field(min_length=1, max_length=500), AfterValidator(_not_blank)]
"""Why an operator did something (a grant or adjustment): one line, 1-500 characters,
not only white space (a reason nobody wrote is no reason)."""

UserName = Annotated[str, Field(pattern=USER_PATTERN, min_length=1, max_length=USER_MAX)]
ClientName = Annotated[str, Field(pattern=CLIENT_PATTERN, min_length=1, max_length=CLIENT_MAX)]
NonNegativeInt32 = Annotated[int, Strict(), Field(ge=0, le=INT32_MAX)]


def at_most(count: int, message: str) -> Any:
    """A before-validator refusing a collection longer than ``count`` before its items are
    validated one by one."""

    def check(value: object) -> object:
        if isinstance(value, dict | list) and len(value) > count:
            raise ValueError(message)
        return value

    return check


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    try:
        parts.port  # noqa: B018  (raises for a port out of range or not a number)
    except ValueError:
        raise ValueError("has an invalid port") from None
    return value


HttpUrl = Annotated[
    str,
    Field(pattern=r"^https?://[^\u0000-\u0020\u007f-\u009f]+$", max_length=2000),
    AfterValidator(_http_url),
]
"""An absolute http(s) URL with a host, without spaces or control characters."""


# An upstream API key travels as an HTTP header value: visible ASCII only (0x21-0x7E: no
# space, no control character, nothing outside ASCII), or "" (no key), or the mask a read
# shows (``****…``, which counts as left out).
_API_KEY = re.compile(r"[!-~]+")
_MASK = "****"


def _api_key(value: str) -> str:
    if value and not value.startswith(_MASK) and _API_KEY.fullmatch(value) is None:
        # Never echo the value: it is a secret.
        raise ValueError(
            "must be visible ASCII characters only (no spaces, no control or non-ASCII"
            " characters): it is sent as an HTTP header value"
        )
    return value


ApiKey = Annotated[
    str,
    Field(max_length=500, json_schema_extra={"pattern": r"^(|[!-~]+|\*\*\*\*.*)$"}),
    AfterValidator(_api_key),
]
"""An upstream API key as a write gives it: visible ASCII, "" (none) or the read's mask."""


def _ascii_integer(value: object) -> object:
    # Query and form values are text: only ASCII digits make an integer ("²" and "٣" do
    # not, "1_000" and " 12" do not either), so every parser reads the same number.
    if isinstance(value, str):
        if re.fullmatch(r"[0-9]{1,18}", value) is None:
            raise ValueError("must be a whole number written with the digits 0-9")
        return int(value)
    return value


ASCII_DIGITS = BeforeValidator(_ascii_integer)
"""For an integer that may come as text (query string, form field): text must be ASCII
digits only. Use after its bounds: ``Annotated[int, Field(ge=0), ASCII_DIGITS]``."""
