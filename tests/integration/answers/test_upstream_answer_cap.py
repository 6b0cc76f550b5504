"""An upstream, or a proxy in front of it, answering an API call with more than a worker
reads -- gigabytes, an endless chunked body, a compression bomb -- or trickling it, served
raw by a real TCP server on 127.0.0.1 to the real clients.

The read stops at the cap (the server sees the connection dropped long before it could
send everything, and the worker's memory stays near the cap), the call ends within its
deadline, and the answer counts as one that is not JSON: a poll tries again, a submit is
ambiguous, an error status is read by its status alone. The job-level tests run the real
jobs on PostgreSQL and on SQLite and check the ledger."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from schemas.settings import answer_cap
from tests import corpus
from tests.eventually import eventually
from tests.integration.answers.hostile import (
    GRANT,
    KIND,
    PRICE,
    WORKER_MAX_BODY,
    WORKER_MAX_VIDEO,
    Ctx,
    create,
    load,
)
from tests.integration.e2e.helpers import credits
from tests.listener import Answer, Listener
from worker.jobs.poll import poll_task
from worker.jobs.submit import submit_task
from worker.upstream import (
    AmbiguousSubmitError,
    OperatorProblemError,
    PermanentUpstreamError,
    SubmitRequest,
    TransientUpstreamError,
    UpstreamError,
    registry,
)
from worker.upstream.gateway import GatewayClient
from worker.upstream.gemini.client import GeminiClient
from worker.upstream.http_client import HttpClient

CAP = 1 << 20
# What the loopback's socket buffers hold between the server's writes and the client's
# reads: the server may get this far past what the client read before it sees the cut.
SLACK = 32 << 20
# A test server never sends more than this: a client that reads on fails the test.
MAX_SENT = 512 << 20
TIMEOUT = httpx.Timeout(5.0, connect=1.0)
SUBMIT_PATH = "/google/v1/models/veo/videos"
TASK = "f0aa213c-c09e-4e19-a0e5-c698fe48acf1"
POLL_PATH = f"/google/v1/tasks/{TASK}"
REQUEST = SubmitRequest(model="veo3", prompt="a fox", enhance_prompt=False)


@dataclass
class Sent:
    bytes: int = 0
    cut: bool = False  # the client dropped the connection before the answer ended


def hostile(sent: Sent, head: bytes, body: Iterable[bytes], every: float = 0.0) -> Answer:
    """An answer: `head`, then `body` piece by piece (`every` seconds apart), counted in
    `sent` until the client drops the connection."""

    async def write(writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(head)
            await writer.drain()
            for piece in body:
                await asyncio.sleep(every)  # 0: the client, in this loop too, gets its turn
                writer.write(piece)
                await writer.drain()
                sent.bytes += len(piece)
                if sent.bytes > MAX_SENT:
                    return
        except ConnectionError:
            sent.cut = True
            raise

    return write


def head(status: str = "200 OK", *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", "Connection: close"]
    return ("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode()


def endless() -> Iterator[bytes]:
    """The start of a gateway's JSON answer, and then padding for ever."""
    return itertools.chain(
        [b'{"code": "success", "data": {"pad": "'], itertools.repeat(b"x" * 65536)
    )


def chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        if piece:
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"


def gzipped(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """`pieces` as one gzip stream, flushed after each (forever if they are)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    for piece in pieces:
        yield z.compress(piece) + z.flush(zlib.Z_SYNC_FLUSH)


def zeros() -> Iterator[bytes]:
    return itertools.repeat(bytes(1 << 20))


# name -> (head, body) of a 2xx answer longer than any cap
OVERSIZED: dict[str, Callable[[], tuple[bytes, Iterator[bytes]]]] = {
    "declared_length": lambda: (head("200 OK", f"Content-Length: {10**10}"), endless()),
    "until_close": lambda: (head(), endless()),
    "chunked_endless": lambda: (head("200 OK", "Transfer-Encoding: chunked"), chunked(endless())),
    "gzip_bomb": lambda: (
        head("200 OK", "Transfer-Encoding: chunked", "Content-Encoding: gzip"),
        chunked(gzipped(zeros())),
    ),
    "gzip_in_gzip_bomb": lambda: (
        head("200 OK", "Content-Encoding: gzip, gzip"),
        gzipped(gzipped(zeros())),
    ),
}


def serve(listener: Listener, path: str, make: Callable[[], tuple[bytes, Iterator[bytes]]]) -> Sent:
    sent = Sent()
    answer_head, body = make()
    listener.answers[path] = hostile(sent, answer_head, body)
    return sent


async def read_no_further(sent: Sent) -> None:
    """The server saw the client drop the connection, having sent little past the cap."""
    await eventually(lambda: sent.cut, what="the client to drop the connection")
    assert sent.bytes < CAP + SLACK


async def measured(call: Awaitable[object]) -> tuple[UpstreamError, int]:
    """The error `call` raises, and the most memory Python held meanwhile (bytes)."""
    tracemalloc.start()
    try:
        with pytest.raises(UpstreamError) as raised:
            await call
        return raised.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def gateway(listener: Listener, timeout: httpx.Timeout = TIMEOUT) -> GatewayClient:
    return GatewayClient(listener.url("/"), "sk-hostile", timeout=timeout, max_answer_bytes=CAP)


# --- the clients ----------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(OVERSIZED))
async def test_a_poll_answered_past_the_cap_is_transient_and_read_no_further(
    upstream: Listener, case: str
) -> None:
    sent = serve(upstream, POLL_PATH, OVERSIZED[case])
    async with gateway(upstream) as client:
        error, peak = await measured(client.poll(TASK))
    assert isinstance(error, TransientUpstreamError), error
    assert (error.code, error.status) == ("malformed_response", 200)
    assert f"longer than {CAP} bytes" in error.message
    assert len(str(error.body)) < 100  # a note stands for the answer: nothing of it is kept
    assert peak < 4 * CAP
    await read_no_further(sent)


@pytest.mark.parametrize("case", sorted(OVERSIZED))
async def test_a_submit_answered_past_the_cap_is_ambiguous(upstream: Listener, case: str) -> None:
    sent = serve(upstream, SUBMIT_PATH, OVERSIZED[case])
    async with gateway(upstream) as client:
        error, peak = await measured(client.submit(REQUEST))
    assert isinstance(error, AmbiguousSubmitError), error
    assert error.code == "malformed_submit_response"
    assert peak < 4 * CAP
    await read_no_further(sent)


@pytest.mark.parametrize(
    ("path", "status", "kind", "code"),
    [
        (POLL_PATH, "500 Internal Server Error", TransientUpstreamError, "server_error"),
        (POLL_PATH, "503 Service Unavailable", TransientUpstreamError, "server_error"),
        (POLL_PATH, "404 Not Found", OperatorProblemError, "endpoint_not_found"),
        (POLL_PATH, "401 Unauthorized", OperatorProblemError, "unauthorized"),
        (SUBMIT_PATH, "502 Bad Gateway", AmbiguousSubmitError, "proxy_502"),
        (SUBMIT_PATH, "503 Service Unavailable", TransientUpstreamError, "server_error"),
        (SUBMIT_PATH, "400 Bad Request", PermanentUpstreamError, "http_400"),
    ],
)
@pytest.mark.parametrize("framing", ["declared_length", "chunked_endless", "gzip_bomb"])
async def test_an_error_answered_past_its_limit_is_read_by_its_status(
    upstream: Listener,
    path: str,
    status: str,
    kind: type[UpstreamError],
    code: str,
    framing: str,
) -> None:
    header = {
        "declared_length": f"Content-Length: {10**10}",
        "chunked_endless": "Transfer-Encoding: chunked",
        "gzip_bomb": "Content-Encoding: gzip",
    }[framing]
    body = {"declared_length": endless(), "chunked_endless": chunked(endless())}.get(
        framing, gzipped(zeros())
    )
    sent = Sent()
    upstream.answers[path] = hostile(sent, head(status, header), body)
    async with gateway(upstream) as client:
        call = client.poll(TASK) if path == POLL_PATH else client.submit(REQUEST)
        error, peak = await measured(call)
    assert type(error) is kind, error
    assert error.code == code and error.status == int(status.split()[0])
    assert peak < 4 * CAP
    await read_no_further(sent)


def trickle(status_line_only: bool) -> tuple[bytes, Iterator[bytes]]:
    """A byte every 50 ms for ever: of the body, or of the head itself."""
    if status_line_only:
        return b"HTTP/1.1 200 OK\r\n", itertools.repeat(b"X")
    return head("200 OK", f"Content-Length: {10**6}"), itertools.repeat(b" ")


@pytest.mark.parametrize("where", ["body", "head"])
@pytest.mark.parametrize("op", ["poll", "submit"])
async def test_a_trickled_answer_ends_at_the_deadline(
    upstream: Listener, where: str, op: str
) -> None:
    """httpx's read timeout bounds each read, and each read gets its byte in time: the
    call's own deadline (its read timeout, as a whole) ends it."""
    sent = Sent()
    answer_head, body = trickle(status_line_only=where == "head")
    path = POLL_PATH if op == "poll" else SUBMIT_PATH
    upstream.answers[path] = hostile(sent, answer_head, body, every=0.05)
    started = time.monotonic()
    async with gateway(upstream, httpx.Timeout(1.0, connect=1.0)) as client:
        with pytest.raises(UpstreamError) as raised:
            await (client.poll(TASK) if op == "poll" else client.submit(REQUEST))
    took = time.monotonic() - started
    if op == "poll":
        assert type(raised.value) is TransientUpstreamError and raised.value.code == "timeout"
    else:
        assert type(raised.value) is AmbiguousSubmitError
        assert raised.value.code == "submit_timeout"
    assert 0.9 < took < 3.0
    await eventually(lambda: sent.cut, what="the client to drop the connection")


MAX_VIDEO = 300_000


def operation(video: bytes) -> bytes:
    sample = {"video": {"encodedVideo": base64.b64encode(video).decode(), "encoding": "video/mp4"}}
    body = {
        "name": "models/veo-3.0-generate-001/operations/op1",
        "done": True,
        "response": {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
            "PredictLongRunningResponse",
            "generateVideoResponse": {"generatedSamples": [sample]},
        },
    }
    return json.dumps(body).encode()


async def test_the_cap_leaves_room_for_the_largest_video_inline_in_a_gemini_answer(
    upstream: Listener,
) -> None:
    """The cap the settings derive from ``MAX_VIDEO_BYTES`` admits an operation carrying a
    video of that size inline as base64; one a mebibyte larger is not read."""
    video = bytes(range(256)) * (MAX_VIDEO // 256) + b"\x00" * (MAX_VIDEO % 256)
    path = "/v1beta/models/veo-3.0-generate-001/operations/op1"
    body = operation(video)
    upstream.answers[path] = head("200 OK", f"Content-Length: {len(body)}") + body
    cap = answer_cap(MAX_VIDEO)
    async with GeminiClient(upstream.url("/"), "k", max_answer_bytes=cap) as client:
        result = await client.poll("models/veo-3.0-generate-001/operations/op1")
        assert result.video_url is not None
        async with client.download(result.video_url) as stream:
            got = b"".join([chunk async for chunk in stream.chunks])
        assert got == video

        larger = operation(video + bytes(1 << 20))
        upstream.answers[path] = head("200 OK", f"Content-Length: {len(larger)}") + larger
        with pytest.raises(TransientUpstreamError) as raised:
            await client.poll("models/veo-3.0-generate-001/operations/op1")
    assert raised.value.code == "malformed_response"


# --- the jobs, on both databases --------------------------------------------------------


def answered(listener: Listener, path: str, name: str) -> None:
    found = corpus.gateway(name)
    listener.answers[path] = (
        head(f"{found.status} X", f"Content-Length: {len(found.body)}") + found.body
    )


async def test_the_worker_reads_at_most_the_cap_its_settings_derive(
    worker: Ctx, acme: httpx.AsyncClient, upstream: Listener
) -> None:
    settings = worker["app"].settings
    assert settings.upstream_answer_max_bytes == answer_cap(WORKER_MAX_VIDEO)
    assert settings.upstream_plain_answer_max_bytes == answer_cap(WORKER_MAX_BODY)
    options = worker["app"].upstreams._options
    for kind, cap in (("gemini", WORKER_MAX_VIDEO), ("gateway", WORKER_MAX_BODY)):
        built = registry.provider(kind).build("https://up.example", "k", options)
        try:
            assert isinstance(built, HttpClient) and built._max_answer_bytes == answer_cap(cap)
        finally:
            await built.aclose()
    sent = serve(upstream, POLL_PATH, OVERSIZED["chunked_endless"])
    config = await worker["app"].config.get()
    async with worker["app"].upstreams.lease(config, None, KIND) as client:
        with pytest.raises(TransientUpstreamError) as raised:
            await client.poll(TASK)
    assert f"longer than {answer_cap(WORKER_MAX_BODY)} bytes" in raised.value.message
    await eventually(lambda: sent.cut, what="the client to drop the connection")


@pytest.mark.parametrize("case", ["chunked_endless", "gzip_in_gzip_bomb"])
async def test_a_poll_answered_past_the_cap_backs_off_and_keeps_nothing_of_it(
    worker: Ctx, acme: httpx.AsyncClient, upstream: Listener, assert_ledger: Any, case: str
) -> None:
    answered(upstream, SUBMIT_PATH, "s01_submit_success_doc.json")
    task_id = await create(acme)
    assert await submit_task(worker, task_id) == "submitted"
    sent = serve(upstream, POLL_PATH, OVERSIZED[case])

    assert await poll_task(worker, task_id, 0) == "backoff"

    task = await load(worker, task_id)
    assert task.status == "running" and task.error_code is None
    assert task.upstream_response["_poll"] == {"errors": 1, "last_error": "malformed_response"}
    assert len(json.dumps(task.upstream_response)) < 2048
    await eventually(lambda: sent.cut, what="the client to drop the connection")
    assert (await credits(acme))[:2] == (GRANT - PRICE, PRICE)  # still held: still running

    answered(upstream, POLL_PATH, "p01_success_doc.json")
    assert await poll_task(worker, task_id, 1) == "finished"
    assert (await load(worker, task_id)).status == "storing"
    await assert_ledger()


@pytest.mark.parametrize("case", ["declared_length", "gzip_bomb"])
async def test_a_submit_answered_past_the_cap_is_ambiguous_and_released(
    worker: Ctx, acme: httpx.AsyncClient, upstream: Listener, assert_ledger: Any, case: str
) -> None:
    sent = serve(upstream, SUBMIT_PATH, OVERSIZED[case])
    task_id = await create(acme)

    assert await submit_task(worker, task_id) == "ambiguous"

    task = await load(worker, task_id)
    assert (task.status, task.error_code) == ("failed", "upstream_submit_ambiguous")
    assert len(upstream.on(SUBMIT_PATH)) == 1  # never sent twice
    assert (await credits(acme))[:2] == (GRANT, 0)
    await eventually(lambda: sent.cut, what="the client to drop the connection")
    await assert_ledger()


async def test_a_submit_refused_with_an_endless_body_fails_by_its_status_and_releases(
    worker: Ctx, acme: httpx.AsyncClient, upstream: Listener, assert_ledger: Any
) -> None:
    sent = Sent()
    body = chunked(endless())
    upstream.answers[SUBMIT_PATH] = hostile(
        sent, head("400 Bad Request", "Transfer-Encoding: chunked"), body
    )
    task_id = await create(acme)

    assert await submit_task(worker, task_id) == "rejected"

    task = await load(worker, task_id)
    assert (task.status, task.error_code) == ("failed", "upstream_rejected")
    assert len(json.dumps(task.upstream_response)) < 2048
    assert (await credits(acme))[:2] == (GRANT, 0)
    await eventually(lambda: sent.cut, what="the client to drop the connection")
    await assert_ledger()


@pytest.mark.parametrize("op", ["submit", "poll"])
async def test_a_trickled_answer_ends_at_the_deadline_by_the_usual_rules(
    worker: Ctx, acme: httpx.AsyncClient, upstream: Listener, assert_ledger: Any, op: str
) -> None:
    answered(upstream, SUBMIT_PATH, "s01_submit_success_doc.json")
    task_id = await create(acme)
    path = SUBMIT_PATH if op == "submit" else POLL_PATH
    if op == "poll":
        assert await submit_task(worker, task_id) == "submitted"
    answer_head, body = trickle(status_line_only=False)
    upstream.answers[path] = hostile(Sent(), answer_head, body, every=0.05)

    started = time.monotonic()
    if op == "submit":
        assert await submit_task(worker, task_id) == "ambiguous"
        assert (await load(worker, task_id)).error_code == "upstream_submit_ambiguous"
        assert (await credits(acme))[:2] == (GRANT, 0)
    else:
        assert await poll_task(worker, task_id, 0) == "backoff"
        task = await load(worker, task_id)
        assert task.upstream_response["_poll"] == {"errors": 1, "last_error": "timeout"}
    assert time.monotonic() - started < 3.0
    await assert_ledger()
