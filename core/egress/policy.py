"""What the operator lets egress reach besides the public internet: named hosts and
networks (an intranet's webhook receivers, the tests' listeners) and plain http."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from core.egress.addresses import IPAddress, is_public
from schemas.settings import Settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def host_key(host: str) -> str:
    """A host name as the allowlist compares it: lower case, no trailing dot."""
    return host.lower().rstrip(".")


@dataclass(frozen=True)
class Policy:
    """Public addresses over https always; ``networks`` and ``hosts`` (every address a
    listed name resolves to) although not public; http:// only with ``allow_http``."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)
    allow_http: bool = False

    @classmethod
    def parse(cls, entries: Iterable[str], *, allow_http: bool = False) -> Policy:
        """From allowlist entries, each an IP address, a CIDR network or a host name."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(host_key(entry.strip()))
        return cls(tuple(networks), frozenset(hosts), allow_http)

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        """``GOOGLE_VIDEO_EGRESS_ALLOW`` and ``GOOGLE_VIDEO_EGRESS_ALLOW_HTTP``."""
        return cls.parse(settings.egress_allow, allow_http=settings.egress_allow_http)

    def allows_scheme(self, scheme: str) -> bool:
        return scheme == "https" or (scheme == "http" and self.allow_http)

    def allows(self, host: str, ip: IPAddress) -> bool:
        """Whether ``ip``, one of the addresses ``host`` resolved to, may be connected to.

        No allowlist entry makes the unspecified address, multicast or broadcast a target:
        none is a TCP peer, and connecting to 0.0.0.0 reaches the local host.
        """
        if ip.is_unspecified or ip.is_multicast or ip == BROADCAST:
            return False
        if is_public(ip) or host_key(host) in self.hosts:
            return True
        return any(ip in network for network in self.networks)
