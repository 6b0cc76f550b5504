"""The one error tree of the upstream layer.

::

    UpstreamError
    ├── TransientUpstreamError      retry later: nothing is lost by trying again
    ├── PermanentUpstreamError      retrying the same request cannot succeed
    │   ├── TaskNotFoundError       the provider does not know this task id
    │   └── OperatorProblemError    the operator's key, account or base URL (not the task)
    └── AmbiguousSubmitError        a submit was sent and no answer came back

Which outcome becomes which error is decided by the shared transport rules in
`worker.upstream.outcomes` and each provider's `ErrorPolicy` for its own codes.
"""

from __future__ import annotations

from typing import Any, Literal

Body = dict[str, Any] | str | None


class UpstreamError(Exception):
    """Base of every error raised by an upstream client.

    `code` is a stable machine code (the upstream's own code when it sent one),
    `message` the upstream's text verbatim (often Chinese), `status` the HTTP status when
    an answer arrived, and `body` a snapshot of that answer.
    """

    def __init__(
        self, code: str, message: str, *, status: int | None = None, body: Body = None
    ) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.status = status
        self.body = body

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.code}{where}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # ARQ pickles job exceptions; keyword-only attributes need an explicit recipe.
        return (_rebuild, (type(self), self.__dict__.copy()))


class TransientUpstreamError(UpstreamError):
    """Network errors, timeouts, 429 and 5xx: the same request may succeed later.

    `retry_after` is the delay in seconds the upstream asked for (Retry-After), if any.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        body: Body = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message, status=status, body=body)
        self.retry_after = retry_after


class PermanentUpstreamError(UpstreamError):
    """The upstream refused the request (4xx, or an error code on a 200 submit)."""


class TaskNotFoundError(PermanentUpstreamError):
    """The provider says it has no such task (the gateway's `task_not_exist`): it will
    never finish."""


# key_unreadable: the stored key cannot be decrypted with this SECRET_KEY (a database
# restored under another one): nothing was sent, and only the operator can fix it.
OperatorCause = Literal["auth", "quota", "endpoint", "key_unreadable"]
_OPERATOR_CODES: dict[OperatorCause, str] = {
    "auth": "unauthorized",
    "quota": "quota_exhausted",
    "endpoint": "endpoint_not_found",
    "key_unreadable": "key_unreadable",
}


class OperatorProblemError(PermanentUpstreamError):
    """The provider refused the operator's key or account (401/403, or a quota code), or
    the operator's configuration does not lead to it (a 404 on a task query).

    Permanent for a submit (that task cannot be sent with this key), but not the running
    tasks' fault: the provider keeps generating (and billing) what it already accepted, so
    a poll that gets this must not fail its task. `cause` is ``"auth"`` (key rejected or
    revoked), ``"quota"`` (the key or the account ran out) or ``"endpoint"`` (the query
    URL leads nowhere: a wrong base URL or path); `code` is ours (``unauthorized`` /
    ``quota_exhausted`` / ``endpoint_not_found``), `upstream_code` the provider's own code
    (``quota_not_enough`` …) when it sent one.
    """

    def __init__(
        self,
        cause: OperatorCause,
        message: str,
        *,
        upstream_code: str | None = None,
        status: int | None = None,
        body: Body = None,
    ) -> None:
        super().__init__(_OPERATOR_CODES[cause], message, status=status, body=body)
        self.cause: OperatorCause = cause
        self.upstream_code = upstream_code


class AmbiguousSubmitError(UpstreamError):
    """A submit left this process but no usable answer came back.

    The task may or may not exist upstream (the gateway has no idempotency key), so the
    caller must not blindly resubmit a paid job.
    """


def scrubbed(error: UpstreamError, secret: str) -> UpstreamError:
    """`error` with every occurrence of `secret` (the key the request carried) in its
    message and body replaced by ``****``: a provider may quote the key it refused, and
    these texts reach task errors, events and logs. Changes `error` in place."""
    if len(secret) >= _SCRUB_FROM:
        error.message = _without(error.message, secret)
        error.args = (error.code, error.message)
        error.body = _without(error.body, secret)
    return error


# Shorter keys would blank ordinary words; a real key is far longer.
_SCRUB_FROM = 6


def _without(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return value.replace(secret, "****")
    if isinstance(value, dict):
        return {_without(k, secret): _without(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_without(v, secret) for v in value]
    return value


def _rebuild(cls: type[UpstreamError], state: dict[str, Any]) -> UpstreamError:
    error = cls.__new__(cls)
    error.args = (state.get("code"), state.get("message"))
    error.__dict__.update(state)
    return error
