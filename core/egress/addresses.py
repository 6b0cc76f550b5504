"""Which addresses are globally routable: the judgement every egress target passes, in
every form an IPv4 address can take inside an IPv6 one."""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The well-known NAT64 prefix is how IPv6-only networks reach IPv4 hosts, so it is allowed
# when the IPv4 address it carries is public itself.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated (RFC 4291 2.5.5.1)
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765

# Never a legitimate target, although `is_global` lets them through on some Python versions
# (3.11's registry predates several entries; recent releases judge ::ffff:a.b.c.d by its
# IPv4). Every IPv6 form that carries an IPv4 address, NAT64 aside, is refused whatever it
# carries: they are deprecated or host-internal, so no real receiver lives there.
NEVER_PUBLIC = (
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments (RFC 6890)
    ipaddress.ip_network("192.88.99.0/24"),  # 6to4 relay anycast, deprecated (RFC 7526)
    IPV4_COMPATIBLE,
    ipaddress.ip_network("::ffff:0:0/96"),  # IPv4-mapped (RFC 4291 2.5.5.2)
    IPV4_TRANSLATED,
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
    ipaddress.ip_network("2001::/32"),  # Teredo (RFC 4380)
    ipaddress.ip_network("2002::/16"),  # 6to4, deprecated (RFC 7526)
    ipaddress.ip_network("3fff::/20"),  # documentation (RFC 9637)
    ipaddress.ip_network("5f00::/16"),  # SRv6 segment identifiers (RFC 9602)
)


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv4-mapped, -compatible or -translated, 6to4, Teredo
    (the client's) or NAT64 IPv6 address; None for IPv4 and other IPv6 addresses."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64 or ip in IPV4_COMPATIBLE or ip in IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """Whether ``ip`` is a globally routable unicast address hiding no non-public IPv4.

    The stdlib's ``is_global`` (the IANA special-purpose registries) and ``is_multicast``
    and ``is_site_local`` properties, plus the explicit ``NEVER_PUBLIC`` networks.
    """
    if not ip.is_global or ip.is_multicast or any(ip in net for net in NEVER_PUBLIC):
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return False
    inner = embedded_ipv4(ip)
    return inner is None or is_public(inner)
