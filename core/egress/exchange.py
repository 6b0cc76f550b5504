"""The HTTP exchanges egress makes on a user's behalf: a webhook POST (no redirects, the
answer's status and headers only) and an image GET (redirects re-checked hop by hop, the
body read up to a size). Both go to the checked address, within one total deadline, on a
client that ignores the environment's proxies and keeps no cookies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urljoin

import httpx

from core.egress.errors import ExchangeFailed
from core.egress.policy import Policy
from core.egress.targets import Resolver, check, system_resolver

REDIRECTS = frozenset({301, 302, 303, 307, 308})
# A receiver's answer body is read (and dropped) up to this, so its connection can be kept
# for the next delivery; a longer one is cut and its connection closed.
REPLY_BODY_BYTES = 64 * 1024


def client(
    timeout_seconds: float, *, max_connections: int = 100, ca_file: str = ""
) -> httpx.AsyncClient:
    """The client for egress: no redirects followed by httpx (``fetch`` follows them
    itself, checking each hop), ``trust_env=False`` (no ``HTTP(S)_PROXY``, ``NO_PROXY``,
    ``SSL_CERT_FILE`` or ``.netrc`` from the environment: a proxy would make the connection
    to an address we did not check), and a cookie jar that keeps nothing, so one
    receiver's cookies never ride along to another's on the same address.
    ``timeout_seconds`` bounds each connect, read and write. ``ca_file`` (PEM) adds the
    certificates of a private CA to the public ones it verifies against (the operator's
    ``EGRESS_CA_FILE``, for an intranet's receivers).
    """
    verify = httpx.create_ssl_context(trust_env=False)
    if ca_file:
        verify.load_verify_locations(cafile=ca_file)
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        verify=verify,
        timeout=httpx.Timeout(timeout_seconds),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=20),
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


@dataclass(frozen=True)
class Reply:
    """A webhook receiver's answer; its body is not kept."""

    status_code: int
    headers: httpx.Headers


async def post(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    policy: Policy,
    max_seconds: float,
    resolver: Resolver = system_resolver,
) -> Reply:
    """POST ``body`` to ``url`` at the address :func:`~core.egress.targets.check` allowed.

    A redirect is an answer like any other (not followed). ``max_seconds`` bounds the whole
    exchange, lookup included, however slowly the receiver trickles its answer; at most
    ``REPLY_BODY_BYTES`` of the body are read, and dropped. Raises
    UnsafeTarget or LookupUnavailable before connecting, ExchangeFailed after.
    """
    try:
        async with asyncio.timeout(max_seconds):
            target = await check(url, policy, resolver=resolver)
            async with client.stream(
                "POST",
                target.url,
                content=body,
                headers={**headers, **target.headers},
                extensions=target.extensions,
            ) as response:
                await _drain(response, REPLY_BODY_BYTES)
                return Reply(response.status_code, response.headers)
    except TimeoutError:
        raise ExchangeFailed(f"no answer within {max_seconds:g} s") from None
    except httpx.HTTPError as exc:
        raise ExchangeFailed(_describe(exc)) from None


@dataclass(frozen=True)
class Fetched:
    url: str  # where the bytes came from, after redirects
    data: bytes
    declared_type: str | None  # the Content-Type as sent: a claim, to check against the bytes


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    policy: Policy,
    max_bytes: int,
    max_seconds: float,
    max_redirects: int = 3,
    resolver: Resolver = system_resolver,
) -> Fetched:
    """GET ``url``'s body, following up to ``max_redirects`` redirects, each target checked
    like the first (a redirect to a refused address is refused).

    The body is read raw (``Accept-Encoding: identity``, a compressed answer is refused)
    and the read stops once it passes ``max_bytes``; ``max_seconds`` bounds everything.
    Raises UnsafeTarget or LookupUnavailable (a hop refused before connecting), or
    ExchangeFailed (a status other than 2xx, too many redirects, too large, too slow,
    a transport error).
    """
    try:
        async with asyncio.timeout(max_seconds):
            for _hop in range(max_redirects + 1):
                target = await check(url, policy, resolver=resolver)
                async with client.stream(
                    "GET",
                    target.url,
                    headers={**target.headers, "accept-encoding": "identity"},
                    extensions=target.extensions,
                ) as response:
                    location = response.headers.get("location")
                    if response.status_code in REDIRECTS and location:
                        url = urljoin(url, location)  # relative to the URL, not the address
                        continue
                    return Fetched(url, await _body(response, max_bytes), _declared(response))
            raise ExchangeFailed(f"more than {max_redirects} redirects")
    except TimeoutError:
        raise ExchangeFailed(f"not fetched within {max_seconds:g} s") from None
    except httpx.HTTPError as exc:
        raise ExchangeFailed(_describe(exc)) from None


async def _drain(response: httpx.Response, limit: int) -> None:
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > limit:
            return


async def _body(response: httpx.Response, max_bytes: int) -> bytes:
    if not 200 <= response.status_code < 300:
        raise ExchangeFailed(f"answered HTTP {response.status_code}")
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        raise ExchangeFailed("answered with a content encoding although none was accepted")
    too_large = ExchangeFailed(f"larger than {max_bytes} bytes")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    data = bytearray()
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) > max_bytes:
            raise too_large
    return bytes(data)


def _declared(response: httpx.Response) -> str | None:
    value = response.headers.get("content-type")
    return None if value is None else value.split(";")[0].strip().lower()


def _describe(exc: httpx.HTTPError) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
