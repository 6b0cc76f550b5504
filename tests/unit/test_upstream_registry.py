from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import ValidationError

from schemas import providers
from schemas.catalogue import ModelSpec
from schemas.config import RuntimeConfig, RuntimeConfigPatch
from schemas.settings import Settings
from worker.callbacks import CallbackEvidence
from worker.context import WorkerContext
from worker.jobs.pacing import pacing
from worker.upstream import Upstream, registry
from worker.upstream.gateway import GatewayClient
from worker.upstream.registry import ClientOptions, Provider


def _never_built(base_url: str, api_key: str, options: ClientOptions) -> Upstream:
    raise AssertionError("not built in these tests")


LOCAL = Provider(
    kind="local-test",
    title="a test provider",
    build=_never_built,
    upstream_action="local-videos",
    calls_back=False,
)


@pytest.fixture
def local() -> Any:
    registry.register(LOCAL)
    yield LOCAL
    registry.unregister(LOCAL)


@pytest.fixture
def later() -> Any:
    """A kind the configuration knows but no package serves yet (as gemini once was)."""
    providers.declare(providers.ProviderKind("later", "a later provider", implemented=False))
    yield "later"
    providers.forget("later")


def test_gateway_package_serves_gateway_and_simulator() -> None:
    gateway, simulator = registry.provider("gateway"), registry.provider("simulator")

    assert gateway is simulator
    assert gateway.upstream_action == "google-videos"
    assert gateway.calls_back is True


async def test_gateway_client_takes_the_settings_read_timeout() -> None:
    client = registry.provider("gateway").build("https://gw.example", "k", ClientOptions(7.0))

    assert isinstance(client, GatewayClient)
    assert client._api.timeout.read == client._downloads.timeout.read == 7.0
    await client.aclose()


def test_schemas_declare_implemented_exactly_the_kinds_the_built_in_packages_serve() -> None:
    served = set(registry.registered())
    declared = {name for name in ("gateway", "simulator", "gemini") if providers.kind(name)}

    assert declared == {"gateway", "simulator", "gemini"}
    for name in declared:
        kind = providers.kind(name)
        assert kind is not None and kind.implemented is (name in served), name


def test_unregistered_declared_kind_is_refused_on_write_with_its_title(later) -> None:
    with pytest.raises(ValidationError, match="a later provider upstream is not implemented"):
        RuntimeConfigPatch(upstream_kind="later")
    with pytest.raises(NotImplementedError, match="later upstream is not implemented yet"):
        registry.provider("later")
    # A stored document and the environment may still name it, as before.
    assert RuntimeConfig(upstream_kind="later").upstream_kind == "later"
    assert Settings(upstream_kind="later").upstream_kind == "later"


def test_gemini_is_served_by_its_own_package() -> None:
    gemini = registry.provider("gemini")

    assert gemini.upstream_action == "gemini-predict-long-running"
    assert gemini.inline_images is True and gemini.calls_back is False
    assert RuntimeConfigPatch(upstream_kind="gemini").upstream_kind == "gemini"


def test_unknown_kind_is_refused_everywhere() -> None:
    with pytest.raises(ValidationError, match="unknown upstream kind"):
        RuntimeConfigPatch(upstream_kind="local-test")
    with pytest.raises(ValidationError, match="unknown upstream kind"):
        Settings(upstream_kind="local-test")
    with pytest.raises(ValueError, match="unknown upstream kind"):
        registry.provider("local-test")


def test_registering_a_provider_makes_its_kind_configurable_until_unregistered(local) -> None:
    patch = RuntimeConfigPatch(
        upstream_kind="local-test", models=[ModelSpec(id="m", provider="local-test")]
    )
    assert patch.upstream_kind == "local-test"
    assert registry.provider("local-test") is local

    registry.unregister(local)
    with pytest.raises(ValidationError, match="unknown upstream kind"):
        RuntimeConfigPatch(models=[ModelSpec(id="m", provider="local-test")])
    registry.register(local)  # for the fixture's teardown


def test_model_with_unimplemented_provider_is_refused_on_write(later) -> None:
    with pytest.raises(ValidationError, match="a later provider upstream is not implemented"):
        RuntimeConfigPatch(models=[ModelSpec(id="veo-3.0", provider="later")])


def test_a_model_runs_on_its_own_provider_else_the_configured_upstream(local) -> None:
    config = RuntimeConfig(upstream_kind="simulator")

    assert registry.kind_for(config, None) == "simulator"
    assert registry.kind_for(config, ModelSpec(id="veo3")) == "simulator"
    assert registry.provider_for(config, ModelSpec(id="m", provider="local-test")) is local


@pytest.mark.parametrize(
    ("callback_url", "kind", "arriving", "factor"),
    [
        ("https://video.example", "gateway", True, 4.0),
        ("https://video.example", "gateway", False, 1.0),  # never seen: maybe unreachable
        (None, "gateway", True, 1.0),
        ("https://video.example", "local-test", True, 1.0),
    ],
)
def test_polling_is_sparser_only_where_callbacks_come(
    local, callback_url: str | None, kind: str, arriving: bool, factor: float
) -> None:
    settings = Settings(callback_url=callback_url, callback_poll_factor=4.0)
    evidence = CallbackEvidence()
    evidence.arriving = arriving
    context = cast(WorkerContext, SimpleNamespace(settings=settings, callbacks=evidence))

    assert pacing(context, registry.provider(kind)).callback_factor == factor
    assert pacing(context).callback_factor == 1.0


def test_a_served_kind_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="already registered: simulator"):
        registry.register(Provider("simulator", "again", _never_built, "x", calls_back=False))
    assert registry.provider("simulator") is registry.provider("gateway")


def test_unregistering_restores_what_config_validation_knew_before(later) -> None:
    stand_in = Provider("later", "a stand-in", _never_built, "later-videos", calls_back=False)
    registry.register(stand_in)
    assert RuntimeConfigPatch(upstream_kind="later").upstream_kind == "later"

    registry.unregister(stand_in)
    with pytest.raises(ValidationError, match="a later provider upstream is not implemented"):
        RuntimeConfigPatch(upstream_kind="later")
