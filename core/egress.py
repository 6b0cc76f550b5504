"""Egress on a user's behalf (webhooks now, remote images later): public addresses only,
checked after resolution, and the connection goes to the address that was checked (no
second lookup that DNS rebinding could answer differently)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeTarget(Exception):
    """The URL is not http(s), carries credentials, does not resolve, or reaches a
    non-public address."""


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in a mapped, 6to4, NAT64 or Teredo IPv6 address."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    inner = embedded_ipv4(ip)
    if inner is not None and not inner.is_global:
        return False
    return ip.is_global and not ip.is_multicast


async def resolve_target(url: str, *, allow_private: bool) -> tuple[str, str, int]:
    """(host, checked IP, port) for an http(s) URL, or UnsafeTarget.

    Every address the host resolves to must be public (unless ``allow_private``); the
    first one is the one to connect to.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("webhook URLs must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise UnsafeTarget("webhook URLs must not carry credentials")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise UnsafeTarget(f"cannot resolve {parts.hostname}: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not allow_private and not all(is_public(ip) for ip in addresses):
        raise UnsafeTarget(f"{parts.hostname} resolves to a non-public address")
    return parts.hostname, str(addresses[0]), port


async def post(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    allow_private: bool,
) -> httpx.Response:
    """POST ``body`` to ``url``, connecting to the address ``resolve_target`` checked.

    The request carries the URL's host in ``Host`` and (https) as the TLS server name.
    Redirects and timeouts are the ``client``'s. Raises UnsafeTarget before connecting,
    or httpx.HTTPError from the exchange.
    """
    host, ip, port = await resolve_target(url, allow_private=allow_private)
    parts = urlsplit(url)
    literal = f"[{ip}]" if ":" in ip else ip
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return await client.post(
        pinned,
        content=body,
        headers={**headers, "host": host_header},
        extensions=extensions,
    )
