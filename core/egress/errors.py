"""What egress raises: one base, a refusal that says the same thing whatever the reason,
and failures of an exchange with an allowed target."""

from __future__ import annotations

# Shown to tenants (API problems, webhook attempt logs): the same words whether the scheme,
# the credentials, the name's absence or its addresses refused the URL, so no answer tells
# a tenant whether an internal name exists or what it resolves to.
REFUSED = (
    "The URL is not an allowed target: it must be https:// (http:// only where the operator "
    "allows it), carry no credentials, and name a host that resolves to public addresses only."
)


class EgressError(Exception):
    """Base of everything ``core.egress`` raises; ``str()`` is safe to show a tenant."""


class UnsafeTarget(EgressError):
    """Refused before any connection: the text is always :data:`REFUSED`; ``reason`` says
    why, for operators' logs only (it names hosts and addresses)."""

    def __init__(self, reason: str) -> None:
        super().__init__(REFUSED)
        self.reason = reason


class LookupUnavailable(EgressError):
    """The host's name could not be resolved just now (the resolver answered "try again"
    or was too slow): transient, unlike a name that does not exist."""

    def __init__(self) -> None:
        super().__init__("The host's name could not be resolved just now.")


class ExchangeFailed(EgressError):
    """The allowed target was reached (or tried) and the exchange failed: connection,
    TLS, time or size limit, status, redirects. The message names the failure."""
