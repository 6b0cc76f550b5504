"""Egress on a user's behalf, the one way out (webhooks now, remote images for upstreams
that need their bytes): public addresses over https unless the operator allows more,
every resolved address checked, the connection made to the checked one, one refusal text,
and bounded time and size.

``addresses`` judges an IP, ``policy`` adds the operator's allowlist, ``targets`` checks a
URL and pins its address, ``exchange`` holds the client, the webhook ``post`` and the
image ``fetch``; ``errors`` what they raise.
"""

from core.egress.addresses import embedded_ipv4, is_public
from core.egress.errors import (
    REFUSED,
    EgressError,
    ExchangeFailed,
    LookupUnavailable,
    UnsafeTarget,
)
from core.egress.exchange import Fetched, Reply, client, fetch, post
from core.egress.policy import Policy
from core.egress.targets import Resolver, Target, check, system_resolver

__all__ = [
    "REFUSED",
    "EgressError",
    "ExchangeFailed",
    "Fetched",
    "LookupUnavailable",
    "Policy",
    "Reply",
    "Resolver",
    "Target",
    "UnsafeTarget",
    "check",
    "client",
    "embedded_ipv4",
    "fetch",
    "is_public",
    "post",
    "system_resolver",
]
