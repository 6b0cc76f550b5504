"""The upstream clients of one worker process, lent to jobs as leases.

Clients are kept per kind, each built with that kind's access (the configured upstream's
base URL and key for its kind, ``providers.<kind>`` for the others). A change of any
access retires the current clients: new leases get new clients, and a retired client
closes when its last lease ends, so a store that streams for an hour keeps its
connection through a configuration change. Everything closes on `aclose` (shutdown).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from schemas.catalogue import ModelSpec
from schemas.config import RuntimeConfig
from worker.budget import Call, UpstreamBudget
from worker.upstream import registry
from worker.upstream.base import Upstream
from worker.upstream.budgeted import Budgeted
from worker.upstream.errors import OperatorProblemError, UpstreamError, scrubbed
from worker.upstream.registry import ClientOptions, Provider


@dataclass(eq=False)
class _Entry:
    client: Upstream
    leases: int = 0
    retired: bool = False


# (base URL, plain key) of a kind under a config (keys are stored encrypted).
Access = Callable[[RuntimeConfig, str], tuple[str, str]]


class UpstreamPool:
    """`access(config, kind)` gives the base URL and plain key a kind is reached with."""

    def __init__(
        self,
        access: Access,
        options: ClientOptions | None = None,
        budget: UpstreamBudget | None = None,
    ) -> None:
        self._access = access
        self._options = options or ClientOptions()
        self._budget = budget
        self._generation: tuple[object, ...] | None = None
        self._current: dict[str, _Entry] = {}
        self._retired: set[_Entry] = set()

    def provider(
        self, config: RuntimeConfig, spec: ModelSpec | None, kind: str | None = None
    ) -> Provider:
        """The provider a model runs on under `config` -- `kind`'s when a route names it
        (errors as `registry.provider`)."""
        return registry.provider(kind) if kind else registry.provider_for(config, spec)

    @asynccontextmanager
    async def lease(
        self,
        config: RuntimeConfig,
        spec: ModelSpec | None,
        kind: str | None = None,
        *,
        call: Call | None = None,
    ) -> AsyncIterator[Upstream]:
        """The client for `spec`'s provider (or `kind`'s, the task's route) under `config`,
        open until the block ends.

        `spec` None (a model no longer in the catalogue) means the configured upstream.
        Raises NotImplementedError / ValueError for a kind nothing serves. An
        `UpstreamError` leaving the block never quotes the key (`scrubbed`). With a
        budget, each call through the client takes a token first (`call`: its priority;
        None: a submit or download, served as near, waiting in place).
        """
        kind = kind or registry.kind_for(config, spec)
        entry, idle = self._acquire(config, kind)
        try:
            for retired in idle:
                await retired.client.aclose()
            if self._budget is not None and self._budget.limit(kind) > 0:
                yield Budgeted(entry.client, self._budget, kind, call or Call())
            else:
                yield entry.client
        except UpstreamError as error:
            scrubbed(error, self._access(config, kind)[1])
            raise
        finally:
            entry.leases -= 1
            if entry.retired and entry.leases == 0:
                self._retired.discard(entry)
                await entry.client.aclose()

    async def aclose(self) -> None:
        """Close every client, leased or not (worker shutdown)."""
        entries = [*self._current.values(), *self._retired]
        self._current, self._retired, self._generation = {}, set(), None
        for entry in entries:
            await entry.client.aclose()

    def _acquire(self, config: RuntimeConfig, kind: str) -> tuple[_Entry, list[_Entry]]:
        """Take a lease; also return the retired clients nobody holds, to close.

        No await in here: concurrent jobs see the bookkeeping change all at once.
        """
        idle: list[_Entry] = []
        generation = (
            config.upstream_kind,
            config.upstream_base_url,
            config.upstream_api_key,
            tuple(sorted((k, a.base_url, a.api_key) for k, a in config.providers.items())),
        )
        if generation != self._generation:
            for entry in self._current.values():
                entry.retired = True
                if entry.leases:
                    self._retired.add(entry)
                else:
                    idle.append(entry)
            self._current, self._generation = {}, generation
        found = self._current.get(kind)
        if found is None:
            try:
                base_url, api_key = self._access(config, kind)
            except ValueError as exc:  # core.secrets: not under this SECRET_KEY
                self._retired.update(idle)
                raise OperatorProblemError("key_unreadable", f"{kind} key: {exc}") from exc
            provider = registry.provider(kind)
            try:
                client = provider.build(base_url, api_key, self._options)
            except ValueError as exc:  # no base URL stored, and the provider has no default
                self._retired.update(idle)  # closed at shutdown, not lost
                raise OperatorProblemError(
                    "endpoint", f"no base URL for {kind} in the runtime config: {exc}"
                ) from exc
            found = self._current[kind] = _Entry(client)
        found.leases += 1
        return found, idle
