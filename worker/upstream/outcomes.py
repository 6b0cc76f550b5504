"""The shared transport rules by which an upstream outcome becomes a typed error.

Every HTTP answer that is not a success, every success answer carrying an error code and
every transport failure goes through one of the `error_from_*` functions below. What a
provider's own error codes mean is that provider's `ErrorPolicy` (for the gateway,
`worker.upstream.gateway.errors`); the rules about HTTP statuses, Retry-After and httpx
exceptions are the same for every provider and live only here.

Policy, in order:

1. A code the provider names as "task not found" (any status) -> `TaskNotFoundError`.
2. 401 / 403 on a download -> permanent `download_forbidden` (a signed CDN URL, not our key).
3. Whose problem: a code the provider names as "out of quota" or as "the key was refused"
   (any status: Google answers a bad key with 400 ``API_KEY_INVALID``), or 401 / 402 /
   403 -> `OperatorProblemError`, cause ``quota`` when the code or the message says so
   (``quota_not_enough``, "额度已用尽") and ``auth`` otherwise. It is the operator's key or
   account, not the task: the jobs fail a *submit* for it but never a running task.
   Any other 3xx / 4xx on a *poll* (but 408 / 425 / 429) never ends the task: the
   provider names an unknown task with its own code (rule 1), so a proxy's page (404,
   405, 413, 418, a 301 not followed) or the provider refusing the query itself means
   the query never reached the task: the operator's problem, cause ``endpoint``.
4. Codes the provider names as its own passing trouble -> transient, whatever the status.
5. Who answered: 502, 504, 520, 524, 598 and 599 on a *submit* whose body is not the
   provider's own answer (an HTML page, an empty body, a CDN's problem JSON) came from a
   proxy that had forwarded the request and lost the answer: the provider may have created
   (and billed) the task -> `AmbiguousSubmitError`. The provider's own answer with these
   statuses, and 521 / 522 / 523 (the proxy never reached the origin), stay transient.
6. 404 / 410 on a download -> permanent `download_not_found`.
7. 408, 425, 429 and 5xx -> transient, with `retry_after` from the Retry-After header
   (read by `core.retry_after`; the jobs cap it).
8. Other 4xx and unexpected 3xx -> permanent.
9. A 2xx carrying an error code: permanent on submit (the provider refused the job);
   transient on poll/check, because the task may still exist and the caller's poll
   deadline bounds the retries.
10. A request that could not even be built here (a header value h11 or httpx refuses --
    a key with a space, a non-ASCII key -- or a URL it cannot parse) was never sent: the
    operator's configuration -> `OperatorProblemError` (``auth``; ``endpoint`` for the
    URL of a submit or poll), never ambiguous, and with a generic message: the
    exception's text may quote the header, i.e. the key. An invalid *download* URL is the
    provider's answer -> permanent ``invalid_url``.
11. Transport failures before the request could be written (connect error or timeout,
    pool timeout, proxy error) -> transient. Any other transport
    failure on a submit (read/write timeout, dropped connection, undecodable answer) ->
    `AmbiguousSubmitError`, because the provider may have created -- and billed -- the
    task. Write failures count as ambiguous too: a partly written request is very unlikely
    to create a task, but a duplicate paid job costs more than a refunded failure. An API
    call past its own deadline (its read timeout, for the whole call) is a read timeout.
12. An answer longer than a client reads (a 2xx past its ``max_answer_bytes``, any other
    status past ``ERROR_BODY_LIMIT``; the cap counts decoded bytes) is not read on, and
    its body counts as one that is no JSON (`too_long`): a 2xx is malformed (ambiguous on
    a submit, transient elsewhere: `error_from_malformed`), any other status is read by
    the rules above as an answer that is not the provider's own (`error_from_oversized`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from core.retry_after import parse_retry_after
from worker.upstream.errors import (
    AmbiguousSubmitError,
    Body,
    OperatorCause,
    OperatorProblemError,
    PermanentUpstreamError,
    TaskNotFoundError,
    TransientUpstreamError,
    UpstreamError,
)

Operation = Literal["submit", "poll", "download", "check"]

TRANSIENT_STATUSES = frozenset({408, 425, 429})
OPERATOR_STATUSES = frozenset({401, 402, 403})
# Statuses a proxy answers after it forwarded the request and lost the answer: 502 (bad
# or no answer from the origin), 504 / 524 / 598 / 599 (timed out waiting), 520 (the
# origin answered something empty or unknown). 521-523 mean it never got through.
FORWARDED_STATUSES = frozenset({502, 504, 520, 524, 598, 599})
_SNAPSHOT_CHARS = 2048
# Deeper JSON is no answer of a real provider; refusing it bounds every later recursion.
MAX_JSON_DEPTH = 128
_TEXT_MESSAGE_CHARS = 500
# Raised while the request is built here, before a byte is sent (rule 10).
LOCAL_FAILURES = (
    httpx.LocalProtocolError,
    httpx.InvalidURL,
    httpx.UnsupportedProtocol,
    UnicodeError,
)
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)


@dataclass(frozen=True)
class ErrorPolicy:
    """What one provider's own error answers mean (rules 1, 3, 4 and 5 above).

    `read_code(body)` gives the (machine code or None, verbatim message) of an error body
    in the provider's format; codes in `not_found` mean the task does not exist; codes in
    `transient` mean the provider's own passing trouble; codes in `quota` mean the
    operator's account or key ran out, as does a 401/402/403 whose message contains one of
    `quota_words` (compared case-insensitively); codes in `auth` mean the provider refused
    the operator's key whatever the HTTP status. `own_answer(body)` says whether a body is
    in the provider's own error format, i.e. the provider itself answered, not a proxy.
    Codes are compared case-insensitively; on a poll or check, a code or message
    containing one of `not_found_words` means the task does not exist too.
    """

    read_code: Callable[[Body], tuple[str | None, str]]
    not_found: frozenset[str] = frozenset()
    transient: frozenset[str] = frozenset()
    quota: frozenset[str] = frozenset()
    auth: frozenset[str] = frozenset()
    quota_words: tuple[str, ...] = ()
    not_found_words: tuple[str, ...] = ()
    own_answer: Callable[[Body], bool] = lambda body: False


def error_from_response(
    response: httpx.Response,
    op: Operation,
    policy: ErrorPolicy,
    *,
    content: bytes | None = None,
) -> UpstreamError:
    """Map a non-2xx answer. `content` overrides `response.content` (streamed answers)."""
    raw = response.content if content is None else content
    return _from_status(response, op, policy, parse_body(raw), "")


def error_from_oversized(
    response: httpx.Response, op: Operation, policy: ErrorPolicy, limit: int
) -> UpstreamError:
    """Map a non-2xx answer whose body is longer than `limit` bytes and was not read: as an
    answer that is not JSON (by its status: not the provider's own answer)."""
    return _from_status(response, op, policy, too_long(limit), f" (not read: over {limit} bytes)")


def too_long(limit: int) -> str:
    """What stands for an answer body longer than `limit` bytes, which was not read (all
    that is kept of it): a text, so every rule reads it as an answer that is not JSON."""
    return f"<an answer longer than {limit} bytes, not read>"


def _from_status(
    response: httpx.Response, op: Operation, policy: ErrorPolicy, body: Body, note: str
) -> UpstreamError:
    code, message = policy.read_code(body)
    status = response.status_code
    if not message:
        message = _text_message(body) or f"HTTP {status} {response.reason_phrase}".strip()
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return _classify(policy, op, status, code, message + note, body, retry_after)


def error_from_answer(
    op: Operation, status: int, code: str, message: str, body: Body, policy: ErrorPolicy
) -> UpstreamError:
    """Map a 2xx answer whose envelope carries an error code."""
    return _classify(policy, op, status, code, message, body, None)


def error_from_malformed(op: Operation, status: int, body: Body, why: str) -> UpstreamError:
    """Map a 2xx answer that cannot be understood.

    On submit the task may have been created, so this is ambiguous; elsewhere the
    request is safe to repeat.
    """
    if op == "submit":
        return AmbiguousSubmitError("malformed_submit_response", why, status=status, body=body)
    return TransientUpstreamError("malformed_response", why, status=status, body=body)


def error_from_exception(exc: Exception, op: Operation) -> UpstreamError:
    """Map an exception raised while building or sending a request or reading its answer
    (httpx's, or a `UnicodeError` from encoding a header)."""
    if isinstance(exc, LOCAL_FAILURES):
        return _local_failure(exc, op)
    text = str(exc) or type(exc).__name__
    if isinstance(exc, _NEVER_SENT):
        code = "connect_timeout" if isinstance(exc, httpx.TimeoutException) else "connect_error"
        return TransientUpstreamError(code, text)
    if isinstance(exc, httpx.TooManyRedirects):
        return PermanentUpstreamError("too_many_redirects", text)
    timeout = isinstance(exc, httpx.TimeoutException)
    if op == "submit":
        code = "submit_timeout" if timeout else "submit_connection_lost"
        return AmbiguousSubmitError(code, text)
    return TransientUpstreamError("timeout" if timeout else "network_error", text)


def _local_failure(exc: Exception, op: Operation) -> UpstreamError:
    """Rule 10. The exception's own text is never kept: it may quote the key."""
    name = type(exc).__name__
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        if op == "download":
            return PermanentUpstreamError("invalid_url", f"the video URL is not usable ({name})")
        return OperatorProblemError(
            "endpoint",
            f"the request URL could not be built from the configured base URL ({name});"
            " nothing was sent",
        )
    return OperatorProblemError(
        "auth",
        f"the request could not be built ({name}): the configured API key is not a valid"
        " HTTP header value (visible ASCII only, no spaces); nothing was sent",
    )


def _classify(
    policy: ErrorPolicy,
    op: Operation,
    status: int,
    code: str | None,
    message: str,
    body: Body,
    retry_after: float | None,
) -> UpstreamError:
    if _not_found(policy, op, code, message):
        return TaskNotFoundError(code or "task_not_found", message, status=status, body=body)
    if op == "download" and status in (401, 403):
        return PermanentUpstreamError("download_forbidden", message, status=status, body=body)
    operator = _folded(code) in policy.quota or _folded(code) in policy.auth
    if op != "download" and (operator or status in OPERATOR_STATUSES):
        return OperatorProblemError(
            _operator_cause(policy, status, code, message),
            message,
            upstream_code=code,
            status=status,
            body=body,
        )
    passing = _folded(code) in policy.transient
    if op == "poll" and 300 <= status < 500 and status not in TRANSIENT_STATUSES and not passing:
        # Not the provider's "no such task" (rule 1): the query did not reach the task.
        return OperatorProblemError(
            "endpoint", message, upstream_code=code, status=status, body=body
        )
    if _folded(code) not in policy.transient and _from_a_proxy(policy, op, status, body):
        said = "" if message.startswith(f"HTTP {status}") else f" ({message})"
        return AmbiguousSubmitError(
            f"proxy_{status}",
            f"a proxy answered HTTP {status}{said} after forwarding the submit; "
            "the provider may have created the task",
            status=status,
            body=body,
        )
    code = code or _default_code(status)
    transient = (
        _folded(code) in policy.transient
        or status >= 500
        or status in TRANSIENT_STATUSES
        or (200 <= status < 300 and op != "submit")
    )
    if transient:
        return TransientUpstreamError(
            code, message, status=status, body=body, retry_after=retry_after
        )
    if op == "download" and status in (404, 410):
        return PermanentUpstreamError("download_not_found", message, status=status, body=body)
    return PermanentUpstreamError(code, message, status=status, body=body)


def _not_found(policy: ErrorPolicy, op: Operation, code: str | None, message: str) -> bool:
    folded = _folded(code)
    if folded in policy.not_found:
        return True
    if op not in ("poll", "check") or folded in policy.transient:
        return False
    text = f"{folded} {message}".casefold()
    return any(word.casefold() in text for word in policy.not_found_words)


def _folded(code: str | None) -> str:
    return code.strip().casefold() if code else ""


def _operator_cause(
    policy: ErrorPolicy, status: int, code: str | None, message: str
) -> OperatorCause:
    if _folded(code) in policy.quota or status == 402:
        return "quota"
    text = f"{code or ''} {message}".casefold()
    return "quota" if any(word.casefold() in text for word in policy.quota_words) else "auth"


def _from_a_proxy(policy: ErrorPolicy, op: Operation, status: int, body: Body) -> bool:
    return op == "submit" and status in FORWARDED_STATUSES and not policy.own_answer(body)


def _default_code(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status == 408:
        return "request_timeout"
    if status >= 500:
        return "server_error"
    if 300 <= status < 400:
        return "unexpected_redirect"
    if 200 <= status < 300:
        return "upstream_error"
    return f"http_{status}"


def parse_body(raw: bytes) -> Body:
    """A JSON object as a dict; anything else as (truncated) text; nothing as None.

    Bounded for what comes next: JSON nested deeper than `MAX_JSON_DEPTH` (which would
    exhaust the recursion of the parser or of a later serialiser) is kept as text, so
    the caller's "not a JSON object" rule applies (transient on a poll, ambiguous on a
    submit). NUL characters, which PostgreSQL refuses in text and JSONB, are dropped from
    every string and key.
    """
    if not raw:
        return None
    parsed: Any = None
    brackets = raw.count(b"{") + raw.count(b"[")  # cheap: scan only when it could matter
    if brackets <= MAX_JSON_DEPTH or _nesting(raw) <= MAX_JSON_DEPTH:
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            parsed = None
    if isinstance(parsed, dict):
        # In UTF-8 JSON a NUL reaches a parsed string only as the escape ``\u0000`` (the
        # parser refuses raw control characters); UTF-16/32 answers hold zero bytes. With
        # neither, the answer is used as parsed, not copied (the poll hop's hot path).
        if b"\\u0000" not in raw and b"\x00" not in raw:
            return parsed
        cleaned: dict[str, Any] = _without_nul(parsed)
        return cleaned
    return raw.decode("utf-8", errors="replace")[:_SNAPSHOT_CHARS].replace("\x00", "")


def _nesting(raw: bytes) -> int:
    """The deepest bracket nesting of a JSON text (brackets inside strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):  # { [
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif byte in (0x7D, 0x5D):  # } ]
            depth -= 1
    return deepest


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _text_message(body: Body) -> str | None:
    """A short plain-text body (not an HTML page) is itself the message."""
    if not isinstance(body, str):
        return None
    text = body.strip()
    if not text or text.startswith("<") or len(text) > _TEXT_MESSAGE_CHARS:
        return None
    return text
