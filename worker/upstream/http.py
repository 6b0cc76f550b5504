"""Small readings of an HTTP answer that every provider's client needs alike."""

from __future__ import annotations

import time

import httpx

# An error answer is read up to this (a provider's own error is a few hundred bytes);
# a longer one is not read on: classified as an answer that is no JSON.
ERROR_BODY_LIMIT = 64 * 1024


def content_length(headers: httpx.Headers) -> int | None:
    """The declared length of the bytes a reader of the body gets, None when unknown:
    an encoded body's ``Content-Length`` counts the encoded bytes, not the decoded ones."""
    if headers.get("Content-Encoding", "identity").lower() != "identity":
        return None
    try:
        length = int(headers.get("Content-Length", ""))
    except ValueError:
        return None
    return length if length >= 0 else None


def elapsed_ms(started: float) -> int:
    """Milliseconds since `started` (``time.perf_counter()``)."""
    return round((time.perf_counter() - started) * 1000)
