"""Google's error answers (``google.rpc.Status`` as JSON), read for the shared rules.

Every error of the Gemini API is ``{"error": {"code": <HTTP status>, "message", "status":
"<CANONICAL_CODE>", "details": [...]}}``; the canonical code decides (docs/upstreams.md):

- ``INVALID_ARGUMENT``, ``FAILED_PRECONDITION`` (400), ``NOT_FOUND`` (404): permanent;
- ``RESOURCE_EXHAUSTED`` (429), ``UNAVAILABLE`` (503), ``INTERNAL`` (500),
  ``DEADLINE_EXCEEDED`` (504), ``ABORTED`` (409): transient, whatever the HTTP status;
- ``PERMISSION_DENIED`` (403), ``UNAUTHENTICATED`` (401), and a bad key -- which Google
  answers with **400** ``INVALID_ARGUMENT``, an ``ErrorInfo`` reason ``API_KEY_INVALID``
  and "API key not valid" -- the operator's key.

The rules for statuses without Google's body, Retry-After and transport failures are the
shared ones (`worker.upstream.outcomes`): a 502/504 page from a proxy on a submit is
ambiguous, Google's own 5xx is not.
"""

from __future__ import annotations

import re

from worker.upstream.errors import Body
from worker.upstream.outcomes import ErrorPolicy

# Our code for a refused key, whatever Google's ErrorInfo reason said.
KEY_REFUSED = "API_KEY_INVALID"
NOT_FOUND = "NOT_FOUND"
TRANSIENT_CODES = frozenset(
    {"resource_exhausted", "unavailable", "internal", "deadline_exceeded", "aborted"}
)
AUTH_CODES = frozenset({KEY_REFUSED.casefold(), "permission_denied", "unauthenticated"})
# ErrorInfo reasons, and words of the message, that mean the key itself was refused.
_KEY_REASON = re.compile(r"^(API_KEY_\w+|SERVICE_DISABLED|CONSUMER_INVALID)$")
_KEY_WORDS = re.compile(r"\bAPI key (not valid|expired|invalid|is invalid)", re.IGNORECASE)
QUOTA_WORDS = ("billing", "quota", "credits", "prepayment")


def code_and_message(body: Body) -> tuple[str | None, str]:
    """The canonical code (``RESOURCE_EXHAUSTED`` …, or `KEY_REFUSED` for a refused key)
    and the verbatim message of a Google error body; (None, "") for anything else."""
    if not isinstance(body, dict):
        return None, ""
    error = body.get("error")
    if not isinstance(error, dict):
        return None, ""
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    status = error.get("status")
    code = status.strip() if isinstance(status, str) and status.strip() else None
    if _refuses_the_key(error, message or ""):
        code = KEY_REFUSED
    return code, message or ""


def is_google_answer(body: Body) -> bool:
    """Whether `body` is Google's own error (``error`` with an integer ``code`` and a
    ``status`` word), not a proxy's page or JSON."""
    if not isinstance(body, dict):
        return False
    error = body.get("error")
    return (
        isinstance(error, dict)
        and isinstance(error.get("status"), str)
        and isinstance(error.get("code"), int)
    )


def _refuses_the_key(error: dict[str, object], message: str) -> bool:
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        reason = detail.get("reason") if isinstance(detail, dict) else None
        if isinstance(reason, str) and _KEY_REASON.match(reason):
            return True
    return _KEY_WORDS.search(message) is not None


POLICY = ErrorPolicy(
    read_code=code_and_message,
    not_found=frozenset({NOT_FOUND.casefold()}),
    transient=TRANSIENT_CODES,
    auth=AUTH_CODES,
    quota_words=QUOTA_WORDS,
    own_answer=is_google_answer,
)
