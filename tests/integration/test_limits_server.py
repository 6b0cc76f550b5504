"""Limits against the real API process (uvicorn, httptools) on PostgreSQL: floods from one
address, replays of one event and huge JSON bodies leave another tenant's latency where it
was; slow headers and bodies are cut at their deadlines (README, "Limits").

Latency bounds compare medians with a generous factor (the machine is shared), and each
test prints what it measured.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core import apikeys
from core.bootstrap import prepare
from core.ids import new_id
from core.repo import webhooks
from schemas.clock import utcnow
from schemas.settings import Settings
from schemas.status import Role
from tests.integration.test_openai_sdk import ADMIN_KEY, Api, api_env, start_api

HEADER_TIMEOUT = 3.0  # 1 s cut connections whose headers were waiting in a loaded CI run
BODY_TIMEOUT = 2.0
PROMPT = "a lighthouse in a storm"


@pytest.fixture(scope="module")
def server(
    migrated: AsyncEngine, pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("limits-api")
    env = {
        **api_env(pg_url, redis_url, root / "storage"),
        "GOOGLE_VIDEO_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "GOOGLE_VIDEO_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
    }
    yield from start_api(env, root / "api.log")


@pytest.fixture
async def api(server: Api, engine: AsyncEngine, pg_url: str, tmp_path: Path) -> Api:
    settings = Settings(
        environment="test", data_dir=tmp_path, database_url=pg_url, admin_key=ADMIN_KEY
    )
    await prepare(settings, engine)
    return server


async def _key(engine: AsyncEngine, client_id: str) -> str:
    async with engine.begin() as conn:
        _, key = await apikeys.create_key(
            conn, client_id=client_id, name=client_id, role=Role.CLIENT
        )
    return key


async def _latencies(api: Api, key: str, count: int = 20, gap: float = 0.02) -> list[float]:
    """``count`` sequential ``GET /v1/models`` by another process, ``gap`` s apart."""
    probe = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.latency_probe",
        api.base_url,
        key,
        str(count),
        str(gap),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await probe.communicate()
    assert probe.returncode == 0, out
    found: list[float] = json.loads(out)
    return found


def _within(before: list[float], during: list[float], what: str) -> None:
    calm, busy = statistics.median(before), statistics.median(during)
    print(
        f"{what}: other tenant's GET /v1/models median {calm * 1e3:.1f} ms before,"
        f" {busy * 1e3:.1f} ms during (max {max(during) * 1e3:.1f} ms)"
    )
    assert busy < 3 * calm + 0.05, (calm, busy)


# --- replays ---------------------------------------------------------------------------


async def test_fifty_replays_of_one_event_stop_at_the_limit_and_others_keep_their_latency(
    api: Api, engine: AsyncEngine
) -> None:
    key, other = await _key(engine, "replayer"), await _key(engine, "replay-other")
    with api.http() as admin:
        grant = {"amount": 1000, "reason": "t"}
        admin.post("/v1/credits/replayer/grants", params={"client": "replayer"}, json=grant)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=api.base_url, headers=headers, timeout=30) as tenant:
        video = (await tenant.post("/v1/videos", json={"prompt": PROMPT})).json()
        assert (await tenant.post(f"/v1/videos/{video['id']}/cancel")).status_code == 200
        event_id = (await tenant.get("/v1/events")).json()["data"][0]["id"]
        await _endpoints(engine, "replayer", 3)
        before = await _latencies(api, other)
        gate = asyncio.Semaphore(10)

        async def replay() -> httpx.Response:
            async with gate:
                return await tenant.post(f"/v1/events/{event_id}/replay")

        answers, during = await asyncio.gather(
            asyncio.gather(*(replay() for _ in range(50))), _latencies(api, other)
        )
        started = time.perf_counter()
        detail = (await tenant.get(f"/v1/events/{event_id}")).json()
        read_s = time.perf_counter() - started
    codes = [a.status_code for a in answers]
    assert codes.count(202) == 10 and codes.count(429) == 40, codes
    waits = {int(a.headers["retry-after"]) for a in answers if a.status_code == 429}
    assert all(1 <= w <= 3600 for w in waits)
    assert all(len(a.json()["deliveries"]) == 3 for a in answers if a.status_code == 202)
    assert len(detail["deliveries"]) == 20 and detail["deliveries_has_more"] is True
    print(f"50 replays: 10 accepted, 40 refused; GET event {read_s * 1e3:.1f} ms")
    _within(before, during, "50 replays")


async def _endpoints(engine: AsyncEngine, client_id: str, count: int) -> None:
    """``count`` endpoints written directly (nothing delivers in this test)."""
    now = utcnow()
    async with engine.begin() as conn:
        for n in range(count):
            await webhooks.insert_endpoint(
                conn,
                {
                    "id": new_id("whep"),
                    "client_id": client_id,
                    "url": f"https://hooks.example/{n}",
                    "enabled_events": [],
                    "secret": "unused",
                    "enabled": True,
                    "created_at": now,
                    "updated_at": now,
                },
            )


# --- floods from one address -----------------------------------------------------------


async def test_a_flood_of_bad_keys_and_tokens_is_limited_per_address_and_others_are_served(
    api: Api, engine: AsyncEngine
) -> None:
    """300 bad bearer keys from 127.0.0.2 and 300 bad callback tokens from 127.0.0.3, 50 at a
    time: 60 of each are answered (401 / 404), the rest 429; a valid client on 127.0.0.1
    keeps its latency."""
    other = await _key(engine, "flood-other")
    before = await _latencies(api, other)
    keys, tokens, during = await asyncio.gather(
        _flood("127.0.0.2", api, "/v1/videos", bearer=True),
        _flood("127.0.0.3", api, "/v1/upstream/callback/video_00.{}", bearer=False),
        _latencies(api, other),
    )
    assert (keys.count(401), keys.count(429)) == (60, 240), sorted(set(keys))
    assert (tokens.count(404), tokens.count(429)) == (60, 240), sorted(set(tokens))
    _within(before, during, "2 x 300 bad keys and tokens at 50 concurrent")


async def _flood(address: str, api: Api, path: str, *, bearer: bool, count: int = 300) -> list[int]:
    """``count`` requests with a wrong key or token each, 50 at a time, from ``address``."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    gate = asyncio.Semaphore(50)
    async with httpx.AsyncClient(base_url=api.base_url, transport=transport, timeout=30) as c:

        async def one() -> int:
            wrong = secrets.token_hex(16)
            async with gate:
                if bearer:
                    headers = {"Authorization": f"Bearer gv_{wrong}"}
                    return (await c.get(path, headers=headers)).status_code
                return (await c.post(path.format(wrong))).status_code

        started = time.perf_counter()
        found = list(await asyncio.gather(*(one() for _ in range(count))))
        print(f"flood from {address}: {count} in {time.perf_counter() - started:.2f} s")
        return found


# --- large JSON ------------------------------------------------------------------------


def _many_keys(size: int) -> bytes:
    body = b'{"prompt": "x", "metadata": {'
    pair = b'"k0000000": "v",'
    return body + pair * ((size - len(body)) // len(pair)) + b'"z": "v"}}'


def _post_raw(api: Api, head: str, body: bytes, *, chunked: bool = False) -> str:
    """Send the body in 64 KiB pieces (chunked, or after a Content-Length), reading the
    answer as soon as one comes; its status line, or what ended the connection. With
    ``Expect: 100-continue`` the body waits for the server's go-ahead, as curl does."""
    host, port = api.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        if "100-continue" in head:
            sock.settimeout(5)
            first = sock.recv(200).split(b"\r\n")[0].decode()
            if not first.startswith("HTTP/1.1 100"):
                return first
        sock.setblocking(False)
        try:
            for start in range(0, len(body), 65536):
                piece = body[start : start + 65536]
                data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
                while data:
                    try:
                        data = data[sock.send(data) :]
                    except BlockingIOError:
                        time.sleep(0.001)
                    if answer := _answered(sock):
                        return answer
            sock.setblocking(True)
            return sock.recv(200).split(b"\r\n")[0].decode()
        except (BrokenPipeError, ConnectionResetError) as exc:
            return type(exc).__name__


def _answered(sock: socket.socket) -> str:
    try:
        return sock.recv(200).split(b"\r\n")[0].decode() or "closed"
    except BlockingIOError:
        return ""


async def test_huge_json_bodies_are_refused_early_and_stall_no_one(
    api: Api, engine: AsyncEngine
) -> None:
    """Four at once, as the review did: 40 MB declared, 40 MB chunked and 18 MB of 1.2 M
    metadata keys within the byte limit (twice). Each is refused before it is parsed (an
    answer to a body still arriving closes the connection: a reset is that refusal too)."""
    forty, keys = _many_keys(40 * 2**20), _many_keys(18 * 10**6)
    attacker, other = await _key(engine, "json-attacker"), await _key(engine, "json-other")
    head = (
        f"POST /v1/videos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {attacker}\r\n"
        "Content-Type: application/json\r\n"
    )
    declared = head + "Expect: 100-continue\r\nContent-Length: {}\r\n\r\n"
    length = head + "Content-Length: {}\r\n\r\n"
    chunked = head + "Transfer-Encoding: chunked\r\n\r\n"
    before = await _latencies(api, other)
    started = time.perf_counter()
    answers, during = await asyncio.gather(
        asyncio.gather(
            asyncio.to_thread(_post_raw, api, declared.format(len(forty)), forty),
            asyncio.to_thread(_post_raw, api, chunked, forty, chunked=True),
            asyncio.to_thread(_post_raw, api, length.format(len(keys)), keys),
            asyncio.to_thread(_post_raw, api, length.format(len(keys)), keys),
        ),
        _latencies(api, other),
    )
    refused_s = time.perf_counter() - started
    print(f"huge JSON bodies answered {answers} within {refused_s:.2f} s")
    assert answers[0].startswith("HTTP/1.1 413"), answers  # before any byte of it is read
    assert all(a.startswith("HTTP/1.1 413") or "Reset" in a for a in answers), answers
    _within(before, during, "4 huge JSON bodies")
    assert max(during) < max(before) + 0.3, (max(before), max(during))


# --- slow clients ----------------------------------------------------------------------


async def _closed_after(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, trickle: bytes, started: float
) -> float:
    """Seconds from ``started`` (``time.perf_counter()`` taken before connecting: the
    server's deadline starts at its accept, never earlier) until the server ends the
    connection while ``trickle`` is sent every 0.2 s (nothing is sent when it is empty)."""
    while True:
        try:
            if await asyncio.wait_for(reader.read(4096), 0.2) == b"":
                break
        except TimeoutError:
            if trickle:
                writer.write(trickle)
        except ConnectionResetError:
            break
        if time.perf_counter() - started > 30:
            raise AssertionError("the connection was never closed")
    writer.close()
    return time.perf_counter() - started


async def test_silent_and_trickled_headers_are_cut_at_the_deadline(api: Api) -> None:
    host, port = api.base_url.removeprefix("http://").split(":")

    async def one(trickle: bool) -> float:
        # Timed from before the connect: 100 connections opened at once can finish
        # connecting (client side) well after the server accepted and armed its deadline.
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection(host, int(port))
        if trickle:
            writer.write(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")
        pad = b"X-Pad: 1\r\n" if trickle else b""
        return await _closed_after(reader, writer, pad, started)

    closed = await asyncio.gather(*(one(trickle=n % 2 == 0) for n in range(100)))
    print(f"100 slow-header connections closed after {min(closed):.2f}-{max(closed):.2f} s")
    assert all(HEADER_TIMEOUT - 0.1 < s < HEADER_TIMEOUT + 2 for s in closed), closed
    with httpx.Client(base_url=api.base_url) as anonymous:
        assert anonymous.get("/healthz").status_code == 200


async def test_a_trickled_body_is_cut_at_the_deadline(api: Api, engine: AsyncEngine) -> None:
    host, port = api.base_url.removeprefix("http://").split(":")
    key = f"Bearer {await _key(engine, 'trickle')}"
    head = "POST /v1/videos HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"

    async def trickled(auth: str) -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"{head}Authorization: {auth}\r\nContent-Length: 1000\r\n\r\n{{".encode())
        started = time.perf_counter()
        status = b""
        while not status:
            try:
                status = await asyncio.wait_for(reader.readline(), 0.1)
            except TimeoutError:
                writer.write(b" ")
        answered = time.perf_counter() - started
        await reader.read()  # the server closes after its answer
        writer.close()
        return status, answered

    (timed_out, waited), (refused, quick) = await asyncio.gather(
        trickled(key), trickled("Bearer gv_wrong")
    )
    print(f"trickled body: 408 after {waited:.2f} s; unauthenticated 401 after {quick:.2f} s")
    assert timed_out.startswith(b"HTTP/1.1 408"), timed_out
    assert BODY_TIMEOUT - 0.1 < waited < BODY_TIMEOUT + 2
    assert refused.startswith(b"HTTP/1.1 401") and quick < BODY_TIMEOUT, (refused, quick)
