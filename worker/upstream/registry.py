"""The providers this worker can talk to, keyed by kind.

Each provider is one package under ``worker/upstream/`` whose ``PROVIDERS`` tuple
declares it; the packages are found by looking, so adding a provider edits nothing here.
Registering a kind also declares it to config validation in this process
(``schemas.providers``), which is how a provider registered at run time (a test) becomes
configurable.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from schemas import providers
from schemas.catalogue import ModelSpec
from schemas.config import RuntimeConfig
from schemas.providers import ProviderKind
from worker.upstream.base import Upstream


@dataclass(frozen=True)
class ClientOptions:
    """What the settings say about every client: `read_timeout` bounds each API call as a
    whole, in seconds (None: the provider's own default); `max_answer_bytes` is the
    longest API answer read from a provider whose answers may carry the video inline
    (Gemini), `max_plain_answer_bytes` from one whose answers name it by URL (the
    gateway); None: the client's default, ``answer_cap`` of the default
    ``MAX_VIDEO_BYTES``."""

    read_timeout: float | None = None
    max_answer_bytes: int | None = None
    max_plain_answer_bytes: int | None = None


Factory = Callable[[str, str, ClientOptions], Upstream]


@dataclass(frozen=True)
class Provider:
    """One provider: `build(base_url, api_key, options)` makes its client.

    `upstream_action` is recorded on each task it runs; `calls_back` says it POSTs to a
    ``notify_hook`` when a task finishes (then, with a public URL, polling is a sparse
    safety net). `aliases` are further kinds served by the same protocol (the simulator
    speaks the gateway's). `inline_images`: the provider takes no image URL, only bytes,
    so the submit job fetches an https input first, through the egress policy
    (`core.egress`), and hands it over as an `InlineImage`.
    """

    kind: str
    title: str
    build: Factory
    upstream_action: str
    calls_back: bool
    aliases: tuple[str, ...] = ()
    inline_images: bool = False

    @property
    def kinds(self) -> tuple[str, ...]:
        return (self.kind, *self.aliases)


_registered: dict[str, Provider] = {}
# What config validation knew of each registered kind before, for `unregister`.
_declared_before: dict[str, ProviderKind | None] = {}
_builtins_loaded = False


def register(provider: Provider) -> None:
    """Serve `provider.kinds` with `provider` in this process.

    Raises ValueError if one of its kinds is already served.
    """
    _load_builtins()
    _add(provider)


def unregister(provider: Provider) -> None:
    """Undo `register` (tests that register a provider for their own duration)."""
    for name in provider.kinds:
        if _registered.get(name) is provider:
            del _registered[name]
            before = _declared_before.pop(name, None)
            if before is None:
                providers.forget(name)
            else:
                providers.declare(before)


def registered() -> dict[str, Provider]:
    """Every kind served in this process, built-in packages included."""
    _load_builtins()
    return dict(_registered)


def provider(kind: str) -> Provider:
    """The provider serving `kind`.

    Raises NotImplementedError for a kind the configuration knows but nothing serves yet,
    ValueError for a kind nobody knows.
    """
    _load_builtins()
    found = _registered.get(kind)
    if found is not None:
        return found
    if providers.kind(kind) is not None:
        raise NotImplementedError(f"{kind} upstream is not implemented yet")
    raise ValueError(f"unknown upstream kind: {kind!r}")


def kind_for(config: RuntimeConfig, spec: ModelSpec | None) -> str:
    """The kind a model runs on: its own provider, else the configured upstream."""
    return spec.provider if spec is not None and spec.provider else config.upstream_kind


def provider_for(config: RuntimeConfig, spec: ModelSpec | None) -> Provider:
    return provider(kind_for(config, spec))


def make_upstream(
    kind: str, base_url: str, api_key: str, *, read_timeout: float | None = None
) -> Upstream:
    """Build the client for `kind` (errors as `provider`)."""
    return provider(kind).build(base_url, api_key, ClientOptions(read_timeout=read_timeout))


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    package = importlib.import_module("worker.upstream")
    for info in pkgutil.iter_modules(package.__path__, "worker.upstream."):
        if info.ispkg:
            module = importlib.import_module(info.name)
            for declared in getattr(module, "PROVIDERS", ()):
                _add(declared)
    _builtins_loaded = True


def _add(provider: Provider) -> None:
    taken = [name for name in provider.kinds if name in _registered]
    if taken:
        raise ValueError(f"upstream kind already registered: {', '.join(taken)}")
    for name in provider.kinds:
        _registered[name] = provider
        declared = providers.kind(name)
        _declared_before[name] = declared
        title = declared.title if declared is not None else provider.title
        providers.declare(ProviderKind(name, title))
