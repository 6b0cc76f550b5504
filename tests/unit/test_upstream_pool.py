"""Leases keep a client open across a config change until the last job using it ends."""

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager

import pytest

from schemas import providers as kinds
from schemas.catalogue import ModelSpec
from schemas.config import ProviderAccess, RuntimeConfig
from worker.upstream import (
    DownloadStream,
    OperatorProblemError,
    PermanentUpstreamError,
    PollResult,
    SubmitRequest,
    SubmitResult,
    Upstream,
    UpstreamState,
    registry,
)
from worker.upstream.pool import UpstreamPool
from worker.upstream.registry import ClientOptions, Provider


class RecordingUpstream:
    """A provider client that answers polls until it is closed."""

    def __init__(self, kind: str, base_url: str, api_key: str, options: ClientOptions) -> None:
        self.kind, self.base_url, self.api_key, self.options = kind, base_url, api_key, options
        self.closed = False

    async def submit(self, req: SubmitRequest) -> SubmitResult:
        raise NotImplementedError

    async def poll(self, task_id: str) -> PollResult:
        if self.closed:
            raise PermanentUpstreamError("closed", "client used after close")
        return PollResult(
            UpstreamState.RUNNING, "running", 50, None, None, None, None, None, {"id": task_id}
        )

    def download(self, url: str) -> AbstractAsyncContextManager[DownloadStream]:
        raise NotImplementedError

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        self.closed = True


BUILT: list[RecordingUpstream] = []


def _provider(kind: str) -> Provider:
    def build(base_url: str, api_key: str, options: ClientOptions) -> Upstream:
        client = RecordingUpstream(kind, base_url, api_key, options)
        BUILT.append(client)
        return client

    return Provider(kind, f"the {kind} test provider", build, f"{kind}-videos", calls_back=False)


@pytest.fixture(autouse=True)
def providers() -> Iterator[None]:
    registered = [_provider("pool-a"), _provider("pool-b")]
    for provider in registered:
        registry.register(provider)
    BUILT.clear()
    yield
    for provider in registered:
        registry.unregister(provider)


def access(config: RuntimeConfig, kind: str) -> tuple[str, str]:
    """As core.config_store.ConfigStore.access, with "plain:" standing for decryption."""
    if kind == config.upstream_kind:
        return config.upstream_base_url, f"plain:{config.upstream_api_key}"
    stored = config.providers.get(kind)
    return (stored.base_url, f"plain:{stored.api_key}") if stored else ("", "")


@pytest.fixture
async def pool() -> AsyncIterator[UpstreamPool]:
    upstreams = UpstreamPool(access, ClientOptions(9.0))
    yield upstreams
    await upstreams.aclose()


def config(key: str = "k1", kind: str = "pool-a") -> RuntimeConfig:
    return RuntimeConfig(
        upstream_kind=kind, upstream_base_url="https://up.example", upstream_api_key=key
    )


async def test_client_is_built_once_per_config_with_the_plain_key_and_options(pool) -> None:
    async with pool.lease(config(), None) as first:
        pass
    async with pool.lease(config(), None) as second:
        pass

    assert first is second and [first] == BUILT
    assert (first.base_url, first.api_key, first.options.read_timeout) == (
        "https://up.example",
        "plain:k1",
        9.0,
    )
    assert not first.closed


async def test_lease_held_across_a_config_change_keeps_the_old_client_until_released(
    pool,
) -> None:
    async with pool.lease(config("k1"), None) as old:
        async with pool.lease(config("k2"), None) as new:
            assert new is not old and new.api_key == "plain:k2"
        # The config changed while this job held `old`: it stays open and usable.
        assert not old.closed
        assert (await old.poll("t1")).raw == {"id": "t1"}
    assert old.closed
    assert not new.closed
    async with pool.lease(config("k2"), None) as again:
        assert again is new


async def test_idle_client_closes_as_soon_as_the_config_changes(pool) -> None:
    async with pool.lease(config("k1"), None) as old:
        pass
    async with pool.lease(config("k2"), None):
        assert old.closed


async def test_each_provider_of_the_catalogue_gets_its_own_client(pool) -> None:
    spec = ModelSpec(id="m", provider="pool-b")
    async with pool.lease(config(), None) as default, pool.lease(config(), spec) as own:
        assert (default.kind, own.kind) == ("pool-a", "pool-b")
    assert pool.provider(config(), spec).upstream_action == "pool-b-videos"


async def test_another_provider_is_reached_with_its_own_access_and_rebuilt_when_it_changes(
    pool,
) -> None:
    spec = ModelSpec(id="m", provider="pool-b")
    with_b = config().model_copy(
        update={"providers": {"pool-b": ProviderAccess(base_url="https://b.example", api_key="kb")}}
    )
    async with pool.lease(with_b, spec) as own:
        assert (own.base_url, own.api_key) == ("https://b.example", "plain:kb")
    rotated = with_b.model_copy(
        update={"providers": {"pool-b": ProviderAccess(base_url="https://b.example", api_key="kc")}}
    )
    async with pool.lease(rotated, spec) as again:
        assert again is not own and again.api_key == "plain:kc"
    assert own.closed


async def test_a_provider_without_a_base_url_is_the_operators_problem(pool) -> None:
    def no_url(base_url: str, api_key: str, options: ClientOptions) -> Upstream:
        raise ValueError("base_url is required")

    provider = Provider("pool-c", "needs a URL", no_url, "pool-c-videos", calls_back=False)
    registry.register(provider)
    try:
        with pytest.raises(OperatorProblemError, match="no base URL for pool-c") as raised:
            async with pool.lease(config(), ModelSpec(id="m", provider="pool-c")):
                pass
        assert raised.value.cause == "endpoint"
    finally:
        registry.unregister(provider)


async def test_shutdown_closes_every_client_leased_or_not(pool) -> None:
    async with (
        pool.lease(config("k1"), None) as retired_in_use,
        pool.lease(config("k2"), None) as current,
    ):
        await pool.aclose()
        assert retired_in_use.closed and current.closed


async def test_unserved_kind_raises_and_takes_no_lease(pool) -> None:
    kinds.declare(kinds.ProviderKind("later", "a later provider", implemented=False))
    try:
        with pytest.raises(NotImplementedError, match="later upstream is not implemented yet"):
            async with pool.lease(config(kind="later"), None):
                pass
    finally:
        kinds.forget("later")
    async with pool.lease(config(), None) as client:
        assert client.kind == "pool-a"


async def test_a_key_this_secret_key_cannot_decrypt_is_the_operators_problem() -> None:
    """A database restored under another SECRET_KEY: no client is built, no traceback."""
    from core.secrets import SecretBox

    stored = SecretBox("secret-key-a-0123456789abcdef").encrypt("sk-key")
    box = SecretBox("secret-key-b-0123456789abcdef")

    def decrypting(config: RuntimeConfig, kind: str) -> tuple[str, str]:
        return config.upstream_base_url, box.decrypt(config.upstream_api_key)

    upstreams = UpstreamPool(decrypting, ClientOptions(9.0))
    with pytest.raises(OperatorProblemError, match="pool-a key") as raised:
        async with upstreams.lease(config(stored), None):
            pass
    assert raised.value.cause == "key_unreadable" and not BUILT
    await upstreams.aclose()
