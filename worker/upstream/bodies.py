"""Reading an upstream's answer body within bounds.

A body is never read past a cap: a declared ``Content-Length`` over it refuses the body
unread, and without one (chunked, or until the connection closes) the read stops as the
cap is passed. The cap counts the bytes the caller gets, i.e. after the content codings
(gzip, deflate) are undone, and those are undone a piece at a time: a compression bomb
(a kilobyte that inflates to gigabytes, or gzip inside gzip) never expands in one step,
as httpx's own decoders let a network chunk do.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator

import httpx

from worker.upstream.http import content_length

# The codings undone here, which are the ones API calls accept (``ACCEPT_ENCODING``); any
# other is passed on as it came, as httpx does with a coding it does not know.
ACCEPT_ENCODING = "gzip, deflate"
# Decoded output per step, at most.
PIECE = 64 * 1024
# More codings than this on one body is no server's answer (one is usual, two legal).
MAX_CODINGS = 2


async def read_within(response: httpx.Response, limit: int) -> bytes | None:
    """The whole body, decoded; None when it is longer than `limit` bytes, read no further
    than needed to know. Raises what the transport raises (``httpx.TransportError``), and
    ``httpx.DecodingError`` for a body its codings do not decode."""
    return await _collect(response, limit, [])


async def read_error_body(response: httpx.Response, limit: int) -> bytes | None:
    """A download's error answer, to classify it: as `read_within`, but a failure midway
    keeps what arrived (a body cut short is no JSON: read as a proxy's)."""
    parts: list[bytes] = []
    try:
        return await _collect(response, limit, parts)
    except httpx.HTTPError:
        return b"".join(parts)


async def _collect(response: httpx.Response, limit: int, parts: list[bytes]) -> bytes | None:
    """The body into `parts` (each piece as it comes), then joined; None past `limit`."""
    declared = content_length(response.headers)  # None for an encoded body
    if declared is not None and declared > limit:
        return None
    size = 0
    async for chunk in decoded(response, PIECE):
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


async def decoded(response: httpx.Response, piece: int) -> AsyncIterator[bytes]:
    """The body as it arrives, its codings undone, in pieces of at most `piece` bytes
    when it is encoded (an unencoded body comes as the network gives it)."""
    if response.is_stream_consumed:
        async for chunk in response.aiter_bytes(piece):
            yield chunk
        return
    stages = _stages(response.headers)
    chunks = _decoded(response, stages, piece) if stages else response.aiter_raw()
    async for chunk in chunks:
        yield chunk


async def _decoded(
    response: httpx.Response, stages: list[_Inflater], piece: int
) -> AsyncIterator[bytes]:
    async for raw in response.aiter_raw():
        for chunk in _undo(stages, raw, piece):
            yield chunk
    for stage in stages:
        stage.finish()


def _stages(headers: httpx.Headers) -> list[_Inflater]:
    """What undoes the body's codings, the last applied first; none for an unencoded body.

    Raises ``httpx.DecodingError`` for more than `MAX_CODINGS` codings."""
    codings = headers.get_list("content-encoding", split_commas=True)
    if not codings:
        return []
    stages = [
        _Inflater(coding)
        for coding in reversed([c.strip().lower() for c in codings])
        if coding in ("gzip", "deflate")
    ]
    if len(stages) > MAX_CODINGS:
        raise httpx.DecodingError(f"more than {MAX_CODINGS} content codings")
    return stages


def _undo(stages: list[_Inflater], data: bytes, piece: int) -> Iterator[bytes]:
    """`data` through every stage, lazily: a caller that stops drawing stops the work."""
    stage, rest = stages[0], stages[1:]
    stage.feed(data)
    while out := stage.pull(piece):
        if rest:
            yield from _undo(rest, out, piece)
        else:
            yield out


class _Inflater:
    """One gzip or deflate coding undone, its output drawn at most `most` bytes at a time.

    As httpx's decoders: "deflate" is zlib-wrapped, or raw when the first bytes say so;
    zlib's complaints are ``DecodingError``. Stricter than httpx's, which keep whatever
    follows the stream's end (unread, unbounded) and pass a stream cut short as far as it
    goes: bytes after the end, and a stream that stops before its end (gzip's length and
    CRC unchecked), are ``DecodingError`` too."""

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._raw_fallback = coding == "deflate"
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if coding == "gzip" else zlib.MAX_WBITS)
        self._pending = b""
        self._fed = False

    def feed(self, data: bytes) -> None:
        if data and self._zlib.eof:
            self._after_the_end()
        self._fed = self._fed or bool(data)
        self._pending = self._pending + data if self._pending else data

    def finish(self) -> None:
        """At the body's end: raises ``DecodingError`` when the stream has not ended."""
        if self._fed and not self._zlib.eof:
            raise httpx.DecodingError(f"the {self._coding} stream is cut short")

    def _after_the_end(self) -> None:
        raise httpx.DecodingError(f"data after the end of the {self._coding} stream")

    def pull(self, most: int) -> bytes:
        try:
            out = self._zlib.decompress(self._pending, most)
        except zlib.error as exc:
            if not self._raw_fallback:
                raise httpx.DecodingError(str(exc)) from exc
            self._raw_fallback = False
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            return self.pull(most)
        self._raw_fallback = False
        self._pending = self._zlib.unconsumed_tail
        if self._zlib.unused_data:
            self._after_the_end()
        return out
