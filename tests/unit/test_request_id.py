"""X-Request-ID: a caller's safe token is kept, anything else replaced by a new id; the
answer carries it (service/request_id.py)."""

from __future__ import annotations

import re

import httpx
import pytest

from schemas.settings import Settings
from service.app import create_app
from service.request_id import accepted

GENERATED = re.compile(r"[0-9a-f]{16}")


@pytest.mark.parametrize("given", ["abc-123", "trace:1/2+3=4.5_6", "x" * 64])
def test_a_safe_token_is_kept(given: str) -> None:
    assert accepted(given.encode()) == given


@pytest.mark.parametrize(
    "given", [b"", b"x" * 65, b"has space", b"new\nline", b'quote"', "caf\u00e9".encode()]
)
def test_anything_else_is_replaced(given: bytes) -> None:
    assert GENERATED.fullmatch(accepted(given))


async def test_the_answer_carries_the_id_it_was_given_or_a_new_one() -> None:
    transport = httpx.ASGITransport(app=create_app(Settings(environment="test")))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        kept = await client.get("/nowhere", headers={"X-Request-ID": "req-7"})
        replaced = await client.get("/nowhere", headers={"X-Request-ID": "<script>"})
        fresh = await client.get("/nowhere")
    assert kept.headers["x-request-id"] == "req-7"
    assert GENERATED.fullmatch(replaced.headers["x-request-id"])
    assert GENERATED.fullmatch(fresh.headers["x-request-id"])
    assert replaced.headers["x-request-id"] != fresh.headers["x-request-id"]
