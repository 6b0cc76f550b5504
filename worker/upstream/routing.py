"""Which route a task runs on, and which submit failures move it to the next one.

A public model may name routes in order of preference (the catalogue's ``routes``); a
task records the one it was last submitted on (``upstream_route``, ``kind:model``), and
polls and downloads there. A submit that failed *without creating a task* moves on: a
saturation 429 or a 503 (the provider has no capacity or no channel for the model), the
provider refusing the operator's key or account, the provider not knowing the model,
and -- once ``SUBMIT_MAX_TRIES`` are spent on the route -- any other transient error. An
ambiguous submit never moves (the first route may have created a paid task), nor does a
request the provider refused as such (a 400: the next route would refuse it too).
"""

from __future__ import annotations

from schemas.catalogue import ModelSpec, Route
from schemas.config import RuntimeConfig
from worker.upstream.errors import (
    OperatorProblemError,
    TaskNotFoundError,
    TransientUpstreamError,
    UpstreamError,
)

# A provider that answers these created nothing and has no room (or no channel) now.
_NO_ROOM = frozenset({429, 503})


def routes_of(config: RuntimeConfig, spec: ModelSpec | None, model: str) -> list[Route]:
    """The routes of public `model`, each once (`spec` None: it left the catalogue, the
    configured upstream under its own id)."""
    if spec is None:
        return [Route(provider=config.upstream_kind, provider_model=model)]
    # Each route once (a write refuses duplicates; a catalogue stored before may hold
    # them): a task finds its route by label, and a second copy would send the next
    # route back to the first, over and over until the deadline.
    unique: dict[str, Route] = {}
    for route in spec.route_list(config.upstream_kind):
        unique.setdefault(route.label(model), route)
    return list(unique.values())


def position(routes: list[Route], recorded: str | None, model: str) -> int:
    """The index of the route a task recorded (0: none yet, or one no longer listed)."""
    for index, route in enumerate(routes):
        if route.label(model) == recorded:
            return index
    return 0


def kind_of(recorded: str | None) -> str | None:
    """The provider kind of a recorded route, None when the task recorded none."""
    return recorded.split(":", 1)[0] if recorded else None


def moves_at_once(error: UpstreamError) -> bool:
    """Whether this submit failure is a reason to try the next route now."""
    if isinstance(error, OperatorProblemError | TaskNotFoundError):
        return True
    return isinstance(error, TransientUpstreamError) and error.status in _NO_ROOM
