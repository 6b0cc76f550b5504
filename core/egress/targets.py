"""From a URL to the one address egress will connect to: the scheme, the credentials and
every address the host resolves to are checked against the policy, and the request then
goes to the checked address (no second lookup that DNS rebinding could answer
differently)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from core.egress.errors import LookupUnavailable, UnsafeTarget
from core.egress.policy import Policy

# (host, port) -> the addresses, as text, the host resolves to; raises socket.gaierror.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

LOOKUP_SECONDS = 5.0
# getaddrinfo's "try again": the resolver is down or slow, which says nothing about the name.
TRANSIENT_LOOKUP_ERRORS = frozenset({socket.EAI_AGAIN})


async def system_resolver(host: str, port: int) -> list[str]:
    """The system's resolver (``getaddrinfo`` in the loop's thread pool)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Target:
    """A checked URL: ``url`` names the checked ``address`` instead of the host; send it
    with ``headers`` (``Host``) and ``extensions`` (the TLS server name) so the receiver
    sees the URL's host, and its certificate is verified for that host."""

    scheme: str
    host: str  # ASCII (IDNA), lower case, an IPv6 literal without brackets
    port: int
    explicit_port: bool
    address: str
    path: str
    query: str

    @property
    def url(self) -> str:
        literal = f"[{self.address}]" if ":" in self.address else self.address
        return urlunsplit((self.scheme, f"{literal}:{self.port}", self.path, self.query, ""))

    @property
    def headers(self) -> dict[str, str]:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return {"host": f"{host}:{self.port}" if self.explicit_port else host}

    @property
    def extensions(self) -> dict[str, Any]:
        if self.scheme != "https" or _literal(self.host) is not None:
            return {}
        return {"sni_hostname": self.host}


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def check(
    url: str,
    policy: Policy,
    *,
    resolver: Resolver = system_resolver,
    lookup_seconds: float = LOOKUP_SECONDS,
) -> Target:
    """The :class:`Target` for ``url`` if ``policy`` allows it.

    Every address the host resolves to must be allowed, not just the one connected to (the
    first): a name with one public and one internal address is refused. Raises
    UnsafeTarget (scheme, credentials, a malformed or unresolvable host, a refused
    address) or LookupUnavailable (the resolver said "try again" or took longer than
    ``lookup_seconds``).
    """
    parts = urlsplit(url)
    host = parts.hostname
    if not policy.allows_scheme(parts.scheme) or not host:
        raise UnsafeTarget(f"scheme {parts.scheme!r} or no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("credentials in the URL")
    try:
        explicit = parts.port
        host = host.encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        raise UnsafeTarget(f"malformed port or host in {parts.netloc!r}") from None
    if explicit == 0:
        raise UnsafeTarget("port 0")
    port = explicit or (443 if parts.scheme == "https" else 80)
    literal = _literal(host)
    addresses = (
        [literal] if literal is not None else await _resolve(resolver, host, port, lookup_seconds)
    )
    refused = [str(ip) for ip in addresses if not policy.allows(host, ip)]
    if not addresses or refused:
        raise UnsafeTarget(f"{host} resolves to refused addresses {refused or 'none'}")
    return Target(
        parts.scheme,
        host,
        port,
        explicit is not None,
        str(addresses[0]),
        parts.path or "/",
        parts.query,
    )


async def _resolve(
    resolver: Resolver, host: str, port: int, seconds: float
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        async with asyncio.timeout(seconds):
            answers = await resolver(host, port)
    except TimeoutError:
        raise LookupUnavailable from None
    except socket.gaierror as exc:
        if exc.errno in TRANSIENT_LOOKUP_ERRORS:
            raise LookupUnavailable from None
        raise UnsafeTarget(f"{host} does not resolve: {exc}") from None
    except (OSError, UnicodeError) as exc:
        raise UnsafeTarget(f"{host} does not resolve: {exc}") from None
    try:
        return [ipaddress.ip_address(answer) for answer in answers]
    except ValueError:
        raise UnsafeTarget(f"{host} resolves to something not an address: {answers}") from None
