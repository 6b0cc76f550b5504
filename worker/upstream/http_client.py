"""The HTTP side every provider's client shares: one pooled httpx client and its
lifecycle, a timed and counted API call, and a streamed download; each failure read by the
provider's `ErrorPolicy`. A provider's package keeps its wire format, URLs and
credentials (e.g. `worker.upstream.gateway.client`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self
from urllib.parse import urljoin

import httpx
import structlog

from schemas.settings import DEFAULT_MAX_VIDEO_BYTES, answer_cap
from worker.upstream import outcomes
from worker.upstream.base import DownloadStream, Upstream
from worker.upstream.bodies import ACCEPT_ENCODING, decoded, read_error_body, read_within
from worker.upstream.errors import Body, PermanentUpstreamError, UpstreamError
from worker.upstream.http import ERROR_BODY_LIMIT, content_length, elapsed_ms
from worker.upstream.metrics import observe
from worker.upstream.outcomes import (
    LOCAL_FAILURES,
    ErrorPolicy,
    Operation,
    error_from_exception,
    error_from_malformed,
    parse_body,
)
from worker.upstream.registry import ClientOptions, Factory
from worker.upstream.threaded import ThreadedTransport

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DEFAULT_DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
DEFAULT_LIMITS = httpx.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0
)
CHUNK_SIZE = 1024 * 1024
CONNECT_TIMEOUT = 5.0
# A download follows this many redirects at most (a CDN takes one or two).
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_MAX_ANSWER_BYTES = answer_cap(DEFAULT_MAX_VIDEO_BYTES)
_USER_AGENT = "google-video/0.1"

_log = structlog.get_logger(__name__)


class HttpClient:
    """Base of an `Upstream` over HTTP. A subclass names `provider` (the label of its
    calls in ``google_video_upstream_*``) and `policy` (what its error answers mean).

    An API call ends within its read timeout as a whole, answer included, and reads at
    most `max_answer_bytes` of a 2xx answer (``ERROR_BODY_LIMIT`` of any other): see
    `_exchange`. A download's read timeout bounds each network read, not the download:
    callers that need a total deadline wrap it in `asyncio.timeout`.
    """

    provider: ClassVar[str]
    policy: ClassVar[ErrorPolicy]

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None,
        timeout: httpx.Timeout | None,
        download_timeout: httpx.Timeout | None,
        limits: httpx.Limits | None,
        chunk_size: int,
        max_answer_bytes: int | None,
    ) -> None:
        self._download_timeout = download_timeout or DEFAULT_DOWNLOAD_TIMEOUT
        self._chunk_size = chunk_size
        self._max_answer_bytes = max_answer_bytes or DEFAULT_MAX_ANSWER_BYTES
        # API calls (a poll every few seconds for each running task) on their own pool,
        # sent by `_exchange` on its transports: no cookie jar (a gateway's session cookie
        # must not ride along), the subclass's headers built once (`_send`'s `headers`).
        # Only the codings `bodies` undoes within bounds are asked for (httpx would add br
        # and zstd when their packages are installed).
        self._api = httpx.AsyncClient(
            transport=transport,
            timeout=timeout or DEFAULT_TIMEOUT,
            limits=limits or DEFAULT_LIMITS,
            headers={"User-Agent": _USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
        )
        # What `AsyncClient.build_request` would merge into every API call, merged once.
        self._api_headers = dict(self._api.headers)
        self._api_timeout = {"timeout": self._api.timeout.as_dict()}
        self._api_deadline = self._api.timeout.read
        # Downloads read their bodies on threads (`worker.upstream.threaded`: a third of
        # the CPU per GiB); an injected transport serves them as it serves the API calls.
        # No default credentials header: downloads may go to another host (a CDN).
        self._downloads = httpx.AsyncClient(
            transport=transport
            or ThreadedTransport(httpx.HTTPTransport(limits=limits or DEFAULT_LIMITS)),
            timeout=timeout or DEFAULT_TIMEOUT,
            limits=limits or DEFAULT_LIMITS,
            headers={"User-Agent": _USER_AGENT},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        try:
            await self._api.aclose()
        finally:
            await self._downloads.aclose()

    async def _send(
        self,
        op: Operation,
        method: str,
        url: str,
        *,
        log: structlog.typing.FilteringBoundLogger,
        headers: dict[str, str],
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Body]:
        """Send one API request, timed and counted; the status and parsed body of a 2xx.

        Raises the `UpstreamError` the transport failure or the non-2xx answer becomes; a
        2xx answer longer than `max_answer_bytes` (not read) is one that is not JSON:
        ambiguous on a submit, transient otherwise (`outcomes.error_from_malformed`)."""
        started = time.perf_counter()
        try:
            response, content = await self._exchange(method, url, headers, json, params)
        except (httpx.HTTPError, *LOCAL_FAILURES) as exc:
            error = error_from_exception(exc, op)
            log.warning(
                "upstream.transport_error",
                error_code=error.code,
                error=error.message,
                latency_ms=elapsed_ms(started),
            )
            observe(self.provider, op, started, error)
            raise error from exc
        log_method = log.info if op == "submit" else log.debug
        log_method("upstream.response", status=response.status_code, latency_ms=elapsed_ms(started))
        if content is None:
            log.warning("upstream.answer_too_large", status=response.status_code)
        if not response.is_success:
            error = self._refusal(response, op, content)
            log.warning("upstream.error", status=error.status, error_code=error.code)
            observe(self.provider, op, started, error)
            raise error
        if content is None:
            limit = self._max_answer_bytes
            why = f"the answer is longer than {limit} bytes (not read)"
            error = error_from_malformed(op, response.status_code, outcomes.too_long(limit), why)
            observe(self.provider, op, started, error)
            raise error
        observe(self.provider, op, started, None)
        return response.status_code, parse_body(content)

    def _refusal(
        self, response: httpx.Response, op: Operation, content: bytes | None
    ) -> UpstreamError:
        """What a non-2xx answer becomes, by its body; by its status alone when the body
        was longer than ``ERROR_BODY_LIMIT`` (`content` None, not read)."""
        if content is None:
            return outcomes.error_from_oversized(response, op, self.policy, ERROR_BODY_LIMIT)
        return outcomes.error_from_response(response, op, self.policy, content=content)

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        json: dict[str, Any] | None,
        params: dict[str, str] | None,
    ) -> tuple[httpx.Response, bytes | None]:
        """One API call and its answer's body (decoded): what ``self._api.request`` does
        for these calls (no cookies, redirects or event hooks; Basic auth only from
        credentials in the URL), straight on the client's transport for the URL (the
        injected one, or the proxy the environment names).

        ``AsyncClient.request`` spends ~200 µs of CPU more per call on merging and its
        auth/redirect/hook layers (a quarter of a poll's HTTP cost). Raises what the
        transport raises (``httpx.TransportError`` subclasses).

        Bounded: the body is None when it is longer than `max_answer_bytes` (a 2xx) or
        ``ERROR_BODY_LIMIT`` (any other status), read no further than that (the connection
        is dropped); and the whole call ends within the read timeout, which httpx applies
        to each network read only (a byte every few seconds would hold the call for
        ever): past it, ``httpx.ReadTimeout``. The deadline starts before the wait for a
        connection, so a call that waited for the pool that long (as long as its pool
        timeout, the same by default) times out as though sent: the safe side for a
        submit (ambiguous, never sent twice)."""
        request = httpx.Request(
            method,
            url,
            params=params,
            json=json,
            headers={**self._api_headers, **headers},
            extensions=self._api_timeout,
        )
        if request.url.userinfo and "Authorization" not in request.headers:
            # Credentials in the base URL (an upstream behind a Basic-auth proxy) are HTTP
            # Basic auth, as httpx's client makes them; never over the call's own key.
            auth = httpx.BasicAuth(request.url.username, request.url.password)
            request = next(auth.auth_flow(request))
        # httpx's own routing between its transport and its proxy mounts (no public API).
        transport = self._api._transport_for_url(request.url)
        deadline = asyncio.timeout(self._api_deadline)
        try:
            async with deadline:
                response = await transport.handle_async_request(request)
                response.request = request
                try:
                    limit = self._max_answer_bytes if response.is_success else ERROR_BODY_LIMIT
                    try:
                        content = await read_within(response, limit)
                    except httpx.DecodingError:
                        if response.is_success:
                            raise
                        content = b""  # an error answer then speaks by its status alone
                finally:
                    await response.aclose()
        except TimeoutError:
            if not deadline.expired():
                raise
            late = f"no whole answer within {self._api_deadline:g} s"
            raise httpx.ReadTimeout(late, request=request) from None
        return response, content

    def _download_headers(self, url: str) -> dict[str, str]:
        """The headers of a download's GET of `url`, at each hop of its redirects."""
        return {"Accept-Encoding": "identity"}

    async def _follow(self, url: str, started: float) -> httpx.Response:
        """GET `url` for a download (streamed, begun at `started`), following up to
        `MAX_REDIRECTS` redirects by hand: a redirect's body is never read (httpx's own
        following reads each whole, through decoders without a bound), and each hop gets
        `_download_headers` for its own URL. Raises the `UpstreamError` a transport
        failure becomes, or ``too_many_redirects`` (permanent)."""
        for _ in range(MAX_REDIRECTS + 1):
            try:
                request = self._downloads.build_request(
                    "GET", url, headers=self._download_headers(url), timeout=self._download_timeout
                )
                response = await self._downloads.send(request, stream=True)
            except (httpx.HTTPError, *LOCAL_FAILURES) as exc:
                error = error_from_exception(exc, "download")
                _log.warning(
                    "upstream.transport_error",
                    op="download",
                    error_code=error.code,
                    error=error.message,
                )
                observe(self.provider, "download", started, error)
                raise error from exc
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            await response.aclose()  # unread: the connection is dropped, not its body read
            url = urljoin(url, location)
        error = PermanentUpstreamError("too_many_redirects", f"more than {MAX_REDIRECTS} redirects")
        observe(self.provider, "download", started, error)
        raise error

    @asynccontextmanager
    async def _stream(
        self, response: httpx.Response, started: float
    ) -> AsyncIterator[DownloadStream]:
        """The download `response` (streamed, begun at `started`) as a `DownloadStream`,
        closed on exit. A non-2xx raises as the policy reads the start of its body."""
        try:
            if not response.is_success:
                content = await read_error_body(response, ERROR_BODY_LIMIT)
                error = self._refusal(response, "download", content)
                observe(self.provider, "download", started, error)
                raise error
            observe(self.provider, "download", started, None)
            yield DownloadStream(
                content_type=response.headers.get("Content-Type", "application/octet-stream"),
                content_length=content_length(response.headers),
                chunks=self._chunks(response),
            )
        finally:
            await response.aclose()

    async def _chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        """The body as it arrives. An unencoded body is read raw: httpx's regrouping into
        ``chunk_size`` blocks copied every byte twice more and tripled the download's CPU
        (the storage regroups it once, into its own buffers). An encoded one is decoded at
        most ``chunk_size`` bytes at a time, however far a network chunk inflates."""
        try:
            async for chunk in decoded(response, self._chunk_size):
                yield chunk
        except httpx.HTTPError as exc:
            raise error_from_exception(exc, "download") from exc


class _Constructor(Protocol):
    def __call__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout | None = None,
        max_answer_bytes: int | None = None,
    ) -> Upstream: ...


def factory(client: _Constructor, *, inline_video: bool) -> Factory:
    """A `Provider.build` making `client(base_url, api_key)`, with the settings' read
    timeout and answer cap when they set them (the client's defaults otherwise):
    ``ClientOptions.max_answer_bytes`` for a provider whose answers may carry the video
    inline (`inline_video`), else ``max_plain_answer_bytes``."""

    def build(base_url: str, api_key: str, options: ClientOptions) -> Upstream:
        read = options.read_timeout
        timeout = httpx.Timeout(read, connect=CONNECT_TIMEOUT) if read else None
        cap = options.max_answer_bytes if inline_video else options.max_plain_answer_bytes
        return client(base_url, api_key, timeout=timeout, max_answer_bytes=cap)

    return build
