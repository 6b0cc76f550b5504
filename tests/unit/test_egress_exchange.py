"""core.egress.exchange against a local listener, which the policy allows the way an
operator would (``EGRESS_ALLOW=127.0.0.0/8``, ``EGRESS_ALLOW_HTTP=true``): the webhook POST
and the image fetch go to the checked address, never follow a redirect inward, and stop
at their time and size limits; the environment's proxies are ignored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from core import egress
from core.egress import REFUSED, ExchangeFailed, Policy, UnsafeTarget
from tests.listener import Answer, Listener, listening, redirect, reply
from tests.tls import make_certificates

LOOPBACK = Policy.parse(["127.0.0.0/8"], allow_http=True)
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 100


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    async with listening() as result:
        yield result


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with egress.client(5.0) as result:
        yield result


async def resolve_to_loopback(_host: str, _port: int) -> Sequence[str]:
    return ["127.0.0.1"]


def trickle(head: bytes, every: float) -> Answer:
    """An answer that writes ``head`` then one byte per ``every`` seconds, forever."""

    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        while True:
            await writer.drain()
            await asyncio.sleep(every)
            writer.write(b"x")

    return write


def endless(head: bytes) -> Answer:
    """An answer that writes ``head`` then body bytes as fast as it can, until the client
    hangs up."""

    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        while not writer.is_closing():
            writer.write(b"x" * 4096)
            await writer.drain()

    return write


# --- the webhook POST ---------------------------------------------------------------------


async def test_post_refused_by_the_policy_never_connects(listener, client) -> None:
    for url in (listener.url("/hook"), listener.url("/hook", host="localhost")):
        with pytest.raises(UnsafeTarget) as refused:
            await egress.post(client, url, {}, b"{}", policy=Policy(), max_seconds=5)
        assert str(refused.value) == REFUSED
    assert listener.connections == 0


async def test_post_connects_to_the_checked_address_with_the_urls_host(listener, client) -> None:
    url = f"http://receiver.test:{listener.port}/hook?attempt=1"
    answer = await egress.post(
        client,
        url,
        {"webhook-id": "evt_1"},
        b'{"a":1}',
        policy=Policy.parse(["receiver.test"], allow_http=True),
        max_seconds=5,
        resolver=resolve_to_loopback,
    )
    assert answer.status_code == 204
    (request,) = listener.requests
    assert (request.method, request.target) == ("POST", "/hook?attempt=1")
    assert request.headers["host"] == f"receiver.test:{listener.port}"
    assert request.headers["webhook-id"] == "evt_1" and request.body == b'{"a":1}'


async def test_post_answers_a_redirect_without_following_it(listener, client) -> None:
    listener.answers["/hook"] = redirect("http://169.254.169.254/latest/meta-data/")
    answer = await egress.post(
        client, listener.url("/hook"), {}, b"{}", policy=LOOPBACK, max_seconds=5
    )
    assert answer.status_code == 302
    assert answer.headers["location"].startswith("http://169.254.169.254/")
    assert listener.connections == 1


async def test_post_gives_up_at_its_deadline_however_slowly_the_headers_trickle(
    listener, client
) -> None:
    listener.answers["/slow"] = trickle(b"HTTP/1.1 200 OK\r\nX-Slow: ", every=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ExchangeFailed, match=r"no answer within 0\.5 s"):
        await egress.post(
            client, listener.url("/slow"), {}, b"{}", policy=LOOPBACK, max_seconds=0.5
        )
    assert loop.time() - started < 2  # each read is quick: only the total deadline ends it


async def test_post_reads_no_more_of_an_endless_answer_body_than_its_limit(
    listener, client
) -> None:
    listener.answers["/hook"] = endless(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    answer = await egress.post(
        client, listener.url("/hook"), {}, b"{}", policy=LOOPBACK, max_seconds=5
    )
    assert answer.status_code == 200


async def test_environment_proxies_are_ignored(listener, client, monkeypatch) -> None:
    async with listening() as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url())
        async with egress.client(5.0) as fresh:  # built while the variables are set
            await egress.post(
                fresh, listener.url("/hook"), {}, b"{}", policy=LOOPBACK, max_seconds=5
            )
        assert proxy.connections == 0
    assert len(listener.on("/hook")) == 1


async def test_cookies_a_receiver_sets_are_never_sent_on(listener, client) -> None:
    listener.answers["/first"] = reply("200 OK", {"Set-Cookie": "session=tenant-a; Path=/"})
    for path in ("/first", "/second"):
        await egress.post(client, listener.url(path), {}, b"{}", policy=LOOPBACK, max_seconds=5)
    assert "cookie" not in listener.on("/second")[0].headers


# --- the image fetch ----------------------------------------------------------------------


async def fetch(url: str, client: httpx.AsyncClient, **limits: float) -> egress.Fetched:
    return await egress.fetch(
        client,
        url,
        policy=LOOPBACK,
        max_bytes=int(limits.get("max_bytes", 1000)),
        max_seconds=limits.get("max_seconds", 5),
        max_redirects=int(limits.get("max_redirects", 3)),
    )


async def test_fetch_returns_the_bytes_and_only_a_claimed_type(listener, client) -> None:
    listener.answers["/a.png"] = reply("200 OK", {"Content-Type": "Image/PNG; q=1"}, PNG)
    fetched = await fetch(listener.url("/a.png"), client)
    assert fetched.data == PNG and fetched.declared_type == "image/png"
    assert listener.requests[0].headers["accept-encoding"] == "identity"


async def test_fetch_follows_a_redirect_and_checks_the_new_target(listener, client) -> None:
    listener.answers["/old"] = redirect("/new.png", "301 Moved Permanently")
    listener.answers["/new.png"] = reply("200 OK", {}, PNG)
    fetched = await fetch(listener.url("/old"), client)
    assert fetched.url == listener.url("/new.png") and fetched.data == PNG


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.1/",
        "file:///etc/passwd",
    ],
)
async def test_fetch_refuses_a_redirect_inward(listener, client, location) -> None:
    listener.answers["/a.png"] = redirect(location)
    with pytest.raises(UnsafeTarget) as refused:
        await fetch(listener.url("/a.png"), client)
    assert str(refused.value) == REFUSED
    assert listener.connections == 1  # the first hop only


async def test_fetch_stops_after_max_redirects(listener, client) -> None:
    listener.answers["/loop"] = redirect("/loop")
    with pytest.raises(ExchangeFailed, match="more than 2 redirects"):
        await fetch(listener.url("/loop"), client, max_redirects=2)
    assert len(listener.on("/loop")) == 3


async def test_fetch_refuses_a_declared_length_over_the_limit_without_reading(
    listener, client
) -> None:
    listener.answers["/big"] = reply("200 OK", {}, b"x" * 2000)
    with pytest.raises(ExchangeFailed, match="larger than 1000 bytes"):
        await fetch(listener.url("/big"), client)


async def test_fetch_stops_reading_an_undeclared_body_past_the_limit(listener, client) -> None:
    listener.answers["/endless"] = endless(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    with pytest.raises(ExchangeFailed, match="larger than 1000 bytes"):
        await fetch(listener.url("/endless"), client)


async def test_fetch_gives_up_at_its_deadline_on_a_trickled_body(listener, client) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 900\r\n\r\n"
    listener.answers["/slow"] = trickle(head, every=0.05)
    with pytest.raises(ExchangeFailed, match=r"not fetched within 0\.5 s"):
        await fetch(listener.url("/slow"), client, max_seconds=0.5)


@pytest.mark.parametrize(
    ("answer", "failure"),
    [
        (reply("404 Not Found"), "answered HTTP 404"),
        (reply("302 Found"), "answered HTTP 302"),  # a redirect with nowhere to go
        (reply("200 OK", {"Content-Encoding": "gzip"}, b"\x1f\x8b"), "content encoding"),
    ],
)
async def test_fetch_fails_on_what_is_not_a_plain_body(listener, client, answer, failure) -> None:
    listener.answers["/x"] = answer
    with pytest.raises(ExchangeFailed, match=failure):
        await fetch(listener.url("/x"), client)


async def test_fetch_refuses_plain_http_unless_allowed(listener, client) -> None:
    https_only = Policy.parse(["127.0.0.0/8"])
    with pytest.raises(UnsafeTarget):
        await egress.fetch(
            client, listener.url("/a.png"), policy=https_only, max_bytes=10, max_seconds=5
        )
    assert listener.connections == 0


async def test_an_operators_private_ca_is_trusted_only_where_configured(tmp_path) -> None:
    certificates = make_certificates(tmp_path)
    https_only = Policy.parse(["127.0.0.0/8"])
    async with listening(certificates.server_context()) as tls:
        tls.answers["/a.png"] = reply("200 OK", {"Content-Type": "image/png"}, PNG)
        url = tls.url("/a.png", scheme="https")
        async with egress.client(5.0, ca_file=str(certificates.ca_file)) as trusting:
            fetched = await egress.fetch(
                trusting, url, policy=https_only, max_bytes=1000, max_seconds=5
            )
        assert fetched.data == PNG
        async with egress.client(5.0) as public_only:
            with pytest.raises(ExchangeFailed, match="CERTIFICATE_VERIFY_FAILED"):
                await egress.fetch(
                    public_only, url, policy=https_only, max_bytes=1000, max_seconds=5
                )
