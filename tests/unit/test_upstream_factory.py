import pytest

from worker.upstream import make_upstream
from worker.upstream.gateway import GatewayClient
from worker.upstream.gemini import GeminiClient


@pytest.mark.parametrize("kind", ["gateway", "simulator"])
async def test_gateway_and_simulator_use_the_gateway_client(kind):
    upstream = make_upstream(kind, "https://gw.example", "sk-x")

    assert isinstance(upstream, GatewayClient)
    await upstream.aclose()


async def test_gemini_uses_the_gemini_client():
    upstream = make_upstream("gemini", "https://generativelanguage.googleapis.com", "k")

    assert isinstance(upstream, GeminiClient)
    await upstream.aclose()


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown upstream kind"):
        make_upstream("openai", "https://x", "k")
