"""uvicorn's httptools protocol with a deadline on request headers (README, "Limits").

uvicorn times out only an idle keep-alive connection between requests; a connection that
opens and sends nothing, or trickles its headers a byte at a time, is kept for ever (and
the first byte of a request stops the keep-alive timer). Here a request's headers must
be complete ``header_timeout`` seconds after the connection opened or its previous answer
ended; otherwise the connection is closed (no ASGI request exists yet to answer).
Bodies are bounded inside the app: ``service/body_deadline.py``.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderDeadlineProtocol(HttpToolsProtocol):
    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # With a pipelined request already started, its headers are in: nothing to wait for.
        if not self.transport.is_closing() and self.cycle.response_complete:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def with_header_timeout(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class to give uvicorn's ``http``, with its deadline."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": seconds})
