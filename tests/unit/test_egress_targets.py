"""core.egress.targets: a URL is checked (scheme, credentials, every resolved address,
the operator's allowlist) and pinned to the checked address. Names resolve through an
injected resolver: the resolver is not ours, and there is no network here."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.egress import REFUSED, LookupUnavailable, Policy, Resolver, UnsafeTarget, check
from tests.unit.test_egress_addresses import EMBEDDINGS, private_ipv4

HTTPS = Policy()
HTTP = Policy(allow_http=True)


def resolving(table: dict[str, Sequence[str]]) -> Resolver:
    """A resolver answering from ``table``; other names do not exist (NXDOMAIN)."""

    async def resolve(host: str, _port: int) -> Sequence[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


DNS = resolving(
    {
        "intranet.example": ["10.0.0.1"],
        "hooks.example": ["93.184.215.14"],
        "split.example": ["93.184.215.14", "10.0.0.1"],
        "v6.example": ["2606:4700::1111"],
        "xn--bcher-kva.example": ["93.184.215.14"],
    }
)


async def reason(url: str, policy: Policy, resolver: Resolver | None = None) -> str:
    """Why ``check`` refused ``url`` (the operator's log line; tenants read REFUSED)."""
    with pytest.raises(UnsafeTarget) as refused:
        await (check(url, policy) if resolver is None else check(url, policy, resolver=resolver))
    assert str(refused.value) == REFUSED
    return refused.value.reason


# --- the brief's targets, and a few more, are refused -----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::7f00:1]/hook",
        "https://[::ffff:0:7f00:1]/hook",
        "https://[64:ff9b:1::a00:1]/hook",
        "https://[64:ff9b::a9fe:a9fe]/hook",
        "https://[2002:a00:1::1]/hook",
        "https://[fec0::1]/hook",
        "https://[fd00:ec2::254]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:8000/",
        "http://[::]:8000/",
    ],
)
async def test_non_public_literals_are_refused(url: str) -> None:
    await reason(url, HTTP, DNS)


@pytest.mark.parametrize("url", ["http://localhost:8080/", "http://2130706433/", "http://0x7f.1/"])
async def test_names_the_system_resolves_to_loopback_are_refused(url: str) -> None:
    # The system's resolver: these never leave the host.
    assert "127.0.0.1" in await reason(url, HTTP)


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    assert "10.0.0.1" in await reason("https://intranet.example/hook", HTTPS, DNS)


async def test_every_address_of_a_name_must_be_allowed_not_just_the_first() -> None:
    assert "['10.0.0.1']" in await reason("https://split.example/hook", HTTPS, DNS)


@pytest.mark.parametrize(
    "url",
    [
        "https://intranet.example/",  # resolves to 10.0.0.1
        "https://nowhere.example/",  # does not resolve
        "http://hooks.example/",  # public, but plain http
        "ftp://hooks.example/",
        "file:///etc/passwd",
        "https://user:secret@hooks.example/",
        "https://hooks.example:99999/",
        "https://hooks.example:0/",
        "https://a..b/",
        "https://[::ffff:127.0.0.1]/",
    ],
)
async def test_every_refusal_reads_the_same_so_none_tells_what_a_name_resolves_to(url) -> None:
    assert await reason(url, HTTPS, DNS)  # REFUSED for the tenant, the reason in the log


async def test_a_resolver_saying_try_again_is_transient_not_a_refusal() -> None:
    async def try_again(_host: str, _port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(LookupUnavailable):
        await check("https://hooks.example/", HTTPS, resolver=try_again)


async def test_a_slow_resolver_is_cut_at_the_lookup_deadline() -> None:
    async def never(_host: str, _port: int) -> Sequence[str]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(LookupUnavailable):
        await check("https://hooks.example/", HTTPS, resolver=never, lookup_seconds=0.1)
    assert loop.time() - started < 2


# --- the operator's allowlist -------------------------------------------------------------


async def test_an_allowed_network_lets_its_addresses_through_and_nothing_else() -> None:
    policy = Policy.parse(["10.0.0.0/8"])
    target = await check("https://intranet.example/hook", policy, resolver=DNS)
    assert target.address == "10.0.0.1"
    for url in ("https://192.168.1.1/", "https://[::ffff:10.0.0.1]/", "https://127.0.0.1/"):
        with pytest.raises(UnsafeTarget):
            await check(url, policy, resolver=DNS)


async def test_an_allowed_host_name_may_resolve_to_any_address_other_names_may_not() -> None:
    policy = Policy.parse(["Intranet.Example."])
    target = await check("https://intranet.example/hook", policy, resolver=DNS)
    assert target.address == "10.0.0.1"
    with pytest.raises(UnsafeTarget):
        await check("https://10.0.0.1/hook", policy, resolver=DNS)


@pytest.mark.parametrize(
    "url",
    [
        "https://0.0.0.0/",
        "https://224.0.0.1/",
        "https://255.255.255.255/",
        "https://[::]/",
        "https://[ff02::1]/",
    ],
)
async def test_no_allowlist_makes_unspecified_multicast_or_broadcast_a_target(url) -> None:
    everything = Policy.parse(["0.0.0.0/0", "::/0"])
    with pytest.raises(UnsafeTarget):
        await check(url, everything, resolver=DNS)


async def test_plain_http_only_where_the_operator_allows_it() -> None:
    with pytest.raises(UnsafeTarget):
        await check("http://hooks.example/", HTTPS, resolver=DNS)
    assert (await check("http://hooks.example/", HTTP, resolver=DNS)).port == 80


# --- the target is pinned to the checked address ------------------------------------------


async def test_a_name_is_pinned_to_its_checked_address_with_host_and_server_name() -> None:
    target = await check("https://hooks.example:8443/in?x=1#frag", HTTPS, resolver=DNS)
    assert target.url == "https://93.184.215.14:8443/in?x=1"
    assert target.headers == {"host": "hooks.example:8443"}
    assert target.extensions == {"sni_hostname": "hooks.example"}


async def test_an_ipv6_address_is_bracketed_in_the_url() -> None:
    target = await check("https://v6.example/", HTTPS, resolver=DNS)
    assert target.url == "https://[2606:4700::1111]:443/"
    assert target.headers == {"host": "v6.example"}


async def test_a_public_literal_is_its_own_target_without_a_server_name() -> None:
    target = await check("https://[2606:4700::1111]/x", HTTPS, resolver=DNS)
    assert target.url == "https://[2606:4700::1111]:443/x"
    assert target.headers == {"host": "[2606:4700::1111]"} and target.extensions == {}


async def test_an_international_name_is_resolved_and_sent_in_its_ascii_form() -> None:
    target = await check("https://bücher.example/", HTTPS, resolver=DNS)
    assert target.headers == {"host": "xn--bcher-kva.example"}


# --- the property, through the whole URL path ---------------------------------------------


@given(
    v4=private_ipv4,
    form=st.sampled_from(sorted(EMBEDDINGS)),
    filler_a=st.integers(0, 0xFFFF),
    filler_b=st.integers(0, 2**64 - 1),
)
def test_a_private_ipv4_in_any_ipv6_wrapping_is_refused_as_a_url(v4, form, filler_a, filler_b):
    wrapped: ipaddress.IPv6Address = EMBEDDINGS[form](v4, filler_a, filler_b)
    for url in (f"https://{v4}/hook", f"https://[{wrapped}]/hook"):
        with pytest.raises(UnsafeTarget):
            asyncio.run(check(url, HTTPS, resolver=DNS))
