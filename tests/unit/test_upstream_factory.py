import pytest

from worker.upstream import make_upstream
from worker.upstream.gateway import GatewayClient


@pytest.mark.parametrize("kind", ["gateway", "simulator"])
async def test_gateway_and_simulator_use_the_gateway_client(kind):
    upstream = make_upstream(kind, "https://gw.example", "sk-x")

    assert isinstance(upstream, GatewayClient)
    await upstream.aclose()


def test_gemini_is_not_implemented_yet():
    with pytest.raises(NotImplementedError, match="gemini upstream is not implemented yet"):
        make_upstream("gemini", "https://generativelanguage.googleapis.com", "k")


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown upstream kind"):
        make_upstream("openai", "https://x", "k")
