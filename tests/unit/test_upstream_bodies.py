"""Reading an upstream answer's body within bounds (`worker.upstream.bodies`), on httpx
responses whose streams count what was drawn from them."""

from __future__ import annotations

import gzip
import itertools
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator

import httpx
import pytest

from worker.upstream.bodies import PIECE, decoded, read_error_body, read_within

BODY = b'{"code": "success", "data": {"status": "IN_PROGRESS", "progress": "40%"}}'


class Counted(httpx.AsyncByteStream):
    """A network body: hands out `chunks` one by one, counting them."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self.drawn = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            self.drawn += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


def response(stream: Counted, *headers: tuple[str, str]) -> httpx.Response:
    return httpx.Response(200, headers=list(headers), stream=stream)


def endless(piece: bytes) -> Iterator[bytes]:
    return itertools.repeat(piece)


def deflated(wbits: int, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """`chunks` compressed as a stream (each flushed), forever if they are."""
    z = zlib.compressobj(9, zlib.DEFLATED, wbits)
    for chunk in chunks:
        yield z.compress(chunk) + z.flush(zlib.Z_SYNC_FLUSH)
    yield z.flush()


ZEROS = bytes(1 << 20)


async def test_a_body_within_the_cap_is_read_whole() -> None:
    stream = Counted([BODY[:10], BODY[10:]])
    got = await read_within(response(stream, ("Content-Length", str(len(BODY)))), len(BODY))
    assert got == BODY


async def test_a_declared_length_over_the_cap_is_refused_unread() -> None:
    stream = Counted(endless(b"x" * PIECE))
    got = await read_within(response(stream, ("Content-Length", str(10**12))), 1000)
    assert got is None and stream.drawn == 0


async def test_an_endless_body_without_a_length_stops_just_past_the_cap() -> None:
    stream = Counted(endless(b"x" * 4096))
    assert await read_within(response(stream), 100_000) is None
    assert stream.drawn == 100_000 // 4096 * 4096 + 4096


async def test_a_body_exactly_at_the_cap_is_whole_and_one_byte_more_is_not() -> None:
    assert await read_within(response(Counted([b"x" * 10])), 10) == b"x" * 10
    assert await read_within(response(Counted([b"x" * 10, b"y"])), 10) is None


async def test_the_cap_counts_decoded_bytes_of_a_gzip_bomb_in_bounded_steps() -> None:
    stream = Counted(deflated(31, endless(ZEROS)))
    got = await read_within(response(stream, ("Content-Encoding", "gzip")), 5 * PIECE)
    assert got is None
    assert stream.drawn < 64 * 1024  # about 1 KB of gzip per MiB of zeros: a few drawn


async def test_gzip_inside_gzip_never_inflates_more_than_a_piece_at_a_time() -> None:
    inner = deflated(31, endless(ZEROS))
    outer = deflated(31, inner)
    stream = Counted(outer)
    pieces = decoded(response(stream, ("Content-Encoding", "gzip, gzip")), PIECE)
    total = 0
    async for piece in pieces:
        assert len(piece) <= PIECE
        total += len(piece)
        if total > 50 * (1 << 20):
            break
    assert total > 50 * (1 << 20)  # it does decode: 50 MiB of zeros, a piece at a time


@pytest.mark.parametrize(
    ("coding", "data"),
    [
        ("gzip", gzip.compress(BODY, mtime=0)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", zlib.compress(BODY)[2:-4]),  # raw deflate, as some servers send it
        ("gzip, gzip", gzip.compress(gzip.compress(BODY, mtime=0), mtime=0)),
        ("identity", BODY),
        ("br", BODY),  # not undone here (nor asked for): passed on as it came, as httpx does
    ],
    ids=["gzip", "deflate", "raw_deflate", "gzip_twice", "identity", "unknown_coding"],
)
async def test_encoded_bodies_decode_as_httpx_decodes_them(coding: str, data: bytes) -> None:
    chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
    got = await read_within(response(Counted(chunks), ("Content-Encoding", coding)), 10_000)
    assert got == httpx.Response(200, headers={"Content-Encoding": coding}, content=data).content


async def test_a_body_that_does_not_decode_is_a_decoding_error() -> None:
    stream = Counted([b"not gzip at all"])
    with pytest.raises(httpx.DecodingError):
        await read_within(response(stream, ("Content-Encoding", "gzip")), 10_000)


async def test_more_codings_than_any_server_uses_are_refused_before_reading() -> None:
    stream = Counted([gzip.compress(gzip.compress(gzip.compress(BODY)))])
    with pytest.raises(httpx.DecodingError):
        await read_within(response(stream, ("Content-Encoding", "gzip, gzip, gzip")), 10_000)
    assert stream.drawn == 0


async def test_an_answer_already_in_memory_is_held_to_the_cap_too() -> None:
    assert await read_within(httpx.Response(200, content=BODY), len(BODY)) == BODY
    assert await read_within(httpx.Response(200, content=BODY), len(BODY) - 1) is None


async def test_an_error_body_cut_short_keeps_what_arrived() -> None:
    class Broken(Counted):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b'{"code": "'
            raise httpx.ReadError("reset")

    assert await read_error_body(response(Broken([])), 1000) == b'{"code": "'
    assert await read_error_body(response(Counted(endless(b"x" * 100))), 1000) is None
