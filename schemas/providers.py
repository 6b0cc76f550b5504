"""The upstream provider kinds a configuration may name, as data (no I/O).

A provider is implemented by one package under ``worker/upstream/`` that registers with
``worker.upstream.registry``; registering there also declares its kind here, so a
process that registers a provider at run time (a test, a plug-in) accepts it in its
config at once. The API process never imports the worker, so the built-in kinds are
declared below too: adding a provider is its package plus its line here and its
catalogue entries. A kind declared but not implemented is refused on every config
write with "<title> upstream is not implemented yet", and still reads from a stored
document or the environment, as the settings have always allowed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

KIND_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"


@dataclass(frozen=True)
class ProviderKind:
    """One kind: `name` as configured, `title` for messages ("the aggregator gateway")."""

    name: str
    title: str
    implemented: bool = True


_KINDS: dict[str, ProviderKind] = {}


def declare(kind: ProviderKind) -> None:
    """Make `kind.name` known to config validation in this process (replaces any earlier)."""
    _KINDS[kind.name] = kind


def forget(name: str) -> None:
    """Undo `declare` (tests that register a provider for their own duration)."""
    _KINDS.pop(name, None)


def kind(name: str) -> ProviderKind | None:
    return _KINDS.get(name)


def known_kind(name: str) -> str:
    """`name` if declared (implemented or not); ValueError naming the known kinds otherwise."""
    if name not in _KINDS:
        known = ", ".join(sorted(_KINDS))
        raise ValueError(f"unknown upstream kind {name!r}; known kinds: {known}")
    return name


def implemented_kind(name: str) -> str:
    """`name` if declared and implemented; ValueError otherwise (what config writes use)."""
    declared = _KINDS.get(known_kind(name))
    if declared is not None and not declared.implemented:
        raise ValueError(f"{declared.title} upstream is not implemented yet")
    return name


# Stored documents and the environment may name any declared kind; config writes need
# an implemented one.
UpstreamKind = Annotated[str, AfterValidator(known_kind)]
ImplementedKind = Annotated[str, AfterValidator(implemented_kind)]

for _builtin in (
    ProviderKind("gateway", "the aggregator gateway"),
    ProviderKind("simulator", "the built-in simulator"),
    ProviderKind("gemini", "the direct Gemini API"),
):
    declare(_builtin)
