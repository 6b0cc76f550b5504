"""The SSRF address judgement in core.egress.addresses: which addresses a webhook (or any
egress on a user's behalf) may reach, in every way an IPv4 address can hide inside an IPv6
one. URL checks are in test_egress_targets, the exchanges in test_egress_exchange."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.egress import embedded_ipv4, is_public

ip = ipaddress.ip_address

REFUSED_IPV4 = {
    "0.0.0.0": "this host (unspecified)",
    "0.1.2.3": "this network",
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback, top of 127/8",
    "10.0.0.1": "private",
    "10.255.255.255": "private",
    "172.16.0.1": "private",
    "172.31.255.254": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local (cloud metadata)",
    "169.254.0.1": "link-local",
    "100.64.0.1": "shared address space (CGNAT)",
    "100.127.255.254": "shared address space (CGNAT)",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast (SSDP)",
    "240.0.0.1": "reserved",
    "255.255.255.254": "reserved",
    "255.255.255.255": "limited broadcast",
    "192.0.0.1": "IETF protocol assignments",
    "192.0.0.9": "IETF protocol assignments (PCP anycast)",
    "192.0.2.1": "documentation (TEST-NET-1)",
    "198.51.100.1": "documentation (TEST-NET-2)",
    "203.0.113.1": "documentation (TEST-NET-3)",
    "198.18.0.1": "benchmarking",
    "192.88.99.1": "6to4 relay anycast",
}

REFUSED_IPV6 = {
    "::": "unspecified",
    "::1": "loopback",
    "fc00::1": "unique local",
    "fd00::1": "unique local",
    "fd00:ec2::254": "unique local (AWS metadata)",
    "fe80::1": "link-local",
    "febf:ffff::1": "link-local, top of fe80::/10",
    "fec0::1": "site-local (deprecated)",
    "feff:ffff::1": "site-local, top of fec0::/10",
    "ff02::1": "multicast, link scope",
    "ff0e::1": "multicast, global scope",
    "100::1": "discard-only",
    "2001:db8::1": "documentation",
    "3fff::1": "documentation (RFC 9637)",
    "5f00::1": "SRv6 segment identifiers",
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:10.0.0.1": "IPv4-mapped private",
    "::ffff:169.254.169.254": "IPv4-mapped metadata",
    "::7f00:1": "IPv4-compatible loopback",
    "::a00:1": "IPv4-compatible private",
    "::ffff:0:7f00:1": "IPv4-translated loopback",
    "::ffff:0:c0a8:101": "IPv4-translated private",
    "2002:7f00:1::": "6to4 of loopback",
    "2002:a00:1::1": "6to4 of private",
    "2002:a9fe:a9fe::1": "6to4 of metadata",
    "64:ff9b::7f00:1": "NAT64 of loopback",
    "64:ff9b::a00:1": "NAT64 of private",
    "64:ff9b::a9fe:a9fe": "NAT64 of metadata",
    "64:ff9b::6440:1": "NAT64 of CGNAT",
    "64:ff9b::e000:1": "NAT64 of multicast",
    "64:ff9b:1::1": "local-use NAT64",
    "64:ff9b:1::a00:1": "local-use NAT64 of private",
    "64:ff9b:1::808:808": "local-use NAT64, even of a public IPv4",
    "2001::1": "Teredo",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo of a public client",
    "2001:0:4136:e378:8000:63bf:80ff:fffe": "Teredo of client 127.0.0.1",
}

# Deprecated or host-internal forms carrying an IPv4 address are refused whatever they carry
# (Python's own judgement of them differs between versions); only NAT64 may carry a public one.
REFUSED_EVEN_WITH_PUBLIC_IPV4 = {
    "::ffff:8.8.8.8": "IPv4-mapped",
    "::808:808": "IPv4-compatible",
    "::ffff:0:808:808": "IPv4-translated",
    "2002:808:808::1": "6to4",
}

PUBLIC = {
    "8.8.8.8": "Google DNS",
    "1.1.1.1": "Cloudflare DNS",
    "9.9.9.9": "Quad9",
    "93.184.215.14": "example.com",
    "100.63.255.255": "just below CGNAT",
    "100.128.0.0": "just above CGNAT",
    "172.15.255.255": "just below 172.16/12",
    "172.32.0.0": "just above 172.16/12",
    "223.255.255.254": "just below multicast",
    "2606:4700::1111": "Cloudflare DNS",
    "2001:4860:4860::8888": "Google DNS",
    "2a00:1450:4001::1": "a global unicast address",
    "64:ff9b::808:808": "NAT64 of a public IPv4",
}


@pytest.mark.parametrize("address", sorted(REFUSED_IPV4))
def test_non_public_ipv4_is_refused(address: str) -> None:
    assert not is_public(ip(address)), REFUSED_IPV4[address]


@pytest.mark.parametrize("address", sorted(REFUSED_IPV6))
def test_non_public_ipv6_is_refused(address: str) -> None:
    assert not is_public(ip(address)), REFUSED_IPV6[address]


@pytest.mark.parametrize("address", sorted(REFUSED_EVEN_WITH_PUBLIC_IPV4))
def test_ipv4_carrying_forms_other_than_nat64_are_refused(address: str) -> None:
    assert not is_public(ip(address)), REFUSED_EVEN_WITH_PUBLIC_IPV4[address]


@pytest.mark.parametrize("address", sorted(PUBLIC))
def test_public_addresses_pass(address: str) -> None:
    assert is_public(ip(address)), PUBLIC[address]


# --- the property: a private IPv4 address is refused however it is wrapped -----------------

PRIVATE_IPV4_NETWORKS = [
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]

NON_PUBLIC_IPV6_NETWORKS = [
    ipaddress.IPv6Network(net)
    for net in (
        "::/96",
        "::ffff:0:0/96",
        "::ffff:0:0:0/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/32",
        "2001:db8::/32",
        "2002::/16",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
]


def _inside(
    networks: list[ipaddress.IPv4Network] | list[ipaddress.IPv6Network],
) -> st.SearchStrategy:
    return st.sampled_from(networks).flatmap(
        lambda net: st.integers(0, net.num_addresses - 1).map(lambda n: net[n])
    )


private_ipv4 = _inside(PRIVATE_IPV4_NETWORKS)
bits16 = st.integers(0, 0xFFFF)
bits64 = st.integers(0, 2**64 - 1)


def _v6(value: int) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(value)


# Each builds, from an IPv4 address and random filler, one IPv6 address that carries it.
EMBEDDINGS: dict[str, Callable[[ipaddress.IPv4Address, int, int], ipaddress.IPv6Address]] = {
    "mapped": lambda v4, _a, _b: _v6(0xFFFF << 32 | int(v4)),
    "compatible": lambda v4, _a, _b: _v6(int(v4)),
    "translated": lambda v4, _a, _b: _v6(0xFFFF << 48 | int(v4)),
    "6to4": lambda v4, subnet, iid: _v6(0x2002 << 112 | int(v4) << 80 | subnet << 64 | iid),
    "nat64": lambda v4, _a, _b: _v6(0x64FF9B << 96 | int(v4)),
    "local nat64": lambda v4, subnet, _b: _v6(0x64FF9B0001 << 80 | subnet << 32 | int(v4)),
    "teredo": lambda v4, port, server: _v6(
        0x20010000 << 96
        | (server & 0xFFFFFFFF) << 64
        | (port & 0xFFFF) << 32  # flags and port share the remaining 32 bits here
        | (~int(v4) & 0xFFFFFFFF)
    ),
}


@given(
    v4=private_ipv4,
    form=st.sampled_from(sorted(EMBEDDINGS)),
    filler_a=bits16,
    filler_b=bits64,
)
@example(v4=ipaddress.IPv4Address("127.0.0.1"), form="compatible", filler_a=0, filler_b=0)
@example(v4=ipaddress.IPv4Address("127.0.0.1"), form="translated", filler_a=0, filler_b=0)
@example(v4=ipaddress.IPv4Address("10.0.0.1"), form="local nat64", filler_a=0, filler_b=0)
def test_a_private_ipv4_is_refused_in_every_ipv6_embedding(v4, form, filler_a, filler_b):
    assert not is_public(v4)
    wrapped = EMBEDDINGS[form](v4, filler_a, filler_b)
    if form != "local nat64":  # RFC 8215 leaves its layout to the operator: no fixed place
        assert embedded_ipv4(wrapped) == v4, "the test built a real embedding"
    assert not is_public(wrapped), f"{wrapped} ({form} of {v4})"


@given(_inside(NON_PUBLIC_IPV6_NETWORKS))
def test_every_address_of_a_non_public_ipv6_network_is_refused(address):
    assert not is_public(address)


@given(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address))
def test_well_known_nat64_is_as_public_as_the_ipv4_it_carries(v4):
    assert is_public(EMBEDDINGS["nat64"](v4, 0, 0)) == is_public(v4)
