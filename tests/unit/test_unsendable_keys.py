"""A key that cannot travel as an HTTP header value: refused at write, and -- one stored
before that rule -- never sent, never "ambiguous", and never quoted in an error.

The clients run against a real local socket (h11 refuses a header value only when it
writes the request): a listener that accepts and answers nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError

from schemas.config import RuntimeConfigPatch, UpstreamCandidate
from worker.upstream import OperatorProblemError, SubmitRequest, TransientUpstreamError
from worker.upstream.errors import scrubbed
from worker.upstream.gateway import GatewayClient
from worker.upstream.gemini import GeminiClient

BAD_KEYS = ["sk-secret-key ", " sk-secret-key", "sk-secret\tkey", "ключ-секрет", "sk-sécret-key"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_key_that_is_no_header_value_is_refused_without_being_echoed(key):
    for build in (
        lambda: RuntimeConfigPatch.model_validate({"upstream_api_key": key}),
        lambda: RuntimeConfigPatch.model_validate({"providers": {"gemini": {"api_key": key}}}),
        lambda: UpstreamCandidate.model_validate({"upstream_api_key": key}),
    ):
        with pytest.raises(ValidationError) as caught:
            build()
        shown = caught.value.errors(include_url=False, include_input=False, include_context=False)
        assert key.strip() not in str(shown)
        assert "visible ASCII" in str(shown)


@pytest.mark.parametrize("key", ["", "AIza-Sy_0123456789~!", "****abcd", "****"])
def test_visible_ascii_keys_the_empty_key_and_the_mask_pass(key):
    assert RuntimeConfigPatch.model_validate({"upstream_api_key": key}).upstream_api_key == key


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


# Keys h11 or httpx cannot write at all (a tab or an inner space is written, and refused
# by the provider as any wrong key).
@pytest.mark.parametrize("key", ["sk-secret-key ", "sk-secret\nkey", "ключ-секрет", "sk-sécret"])
@pytest.mark.parametrize("kind", ["gemini", "gateway"])
async def test_an_unsendable_key_is_the_operators_problem_and_never_quoted(
    silent_server, key, kind
):
    build = GeminiClient if kind == "gemini" else GatewayClient
    async with build(silent_server, key) as client:
        calls = [
            lambda: client.submit(SubmitRequest("veo3", "a fox", enhance_prompt=False)),
            lambda: client.poll("models/veo3/operations/op1" if kind == "gemini" else "task-1"),
            client.check,
        ]
        for call in calls:
            with pytest.raises(OperatorProblemError) as caught:
                await asyncio.wait_for(call(), 10)
            error = caught.value
            assert error.cause == "auth"
            assert "nothing was sent" in error.message
            assert key.strip() not in f"{error} {error.message} {error.body}"


async def test_a_quoted_key_is_scrubbed_from_message_and_body():
    key = "sk-live-0123456789"
    error = TransientUpstreamError(
        "bad", f"token {key} refused", body={"error": {"message": f"[{key}]"}}
    )

    scrubbed(error, key)

    assert key not in f"{error} {error.message} {error.body} {error.args}"
    assert "****" in error.message
