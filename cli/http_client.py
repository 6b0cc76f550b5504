"""The HTTP API as the people commands use it: where it is and with which key
(``--url``/``GOOGLE_VIDEO_URL``, ``--api-key``/``GOOGLE_VIDEO_API_KEY``), each answer's
JSON, and every way a call can fail turned into one ``CliError`` line.

Calls marked ``retry`` (reads, and a create carrying its ``Idempotency-Key``) are sent
again after a transient failure: a dropped connection or a timeout once the service has
answered before, 502/503/504, ``idempotency_request_in_progress``, a short
``rate_limited``. Anything else fails at once: a service that is not running is said
in a second, not after a minute of retries."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import httpx

from cli.failures import USAGE, CliError

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 30.0
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
# A Retry-After longer than this is reported, not waited out.
MAX_RETRY_AFTER = 10.0
CHUNK = 1 << 20
_TRANSIENT_STATUS = {502, 503, 504}
_TRANSIENT_CODES = {"idempotency_request_in_progress", "unavailable"}


@dataclass(frozen=True)
class Remote:
    """Where the API is, the key to use and how long to wait for each answer."""

    url: str
    api_key: str | None
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def of(cls, url: str | None, api_key: str | None, timeout: float | None) -> Remote:
        """The flags, else the environment, else ``DEFAULT_URL`` and no key."""
        base = (url or os.environ.get("GOOGLE_VIDEO_URL") or DEFAULT_URL).rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise CliError(f"the API URL must start with http:// or https://: {base!r}", USAGE)
        key = api_key or os.environ.get("GOOGLE_VIDEO_API_KEY") or None
        if key is not None:
            sendable("the API key (--api-key or GOOGLE_VIDEO_API_KEY)", key)
        return cls(base, key, timeout or DEFAULT_TIMEOUT)


def sendable(what: str, value: str) -> str:
    """``value`` if it can go in an HTTP header: printable ASCII only. ``CliError``
    (exit 2) otherwise, naming ``what`` but never quoting the value (a key is a secret;
    a stray ``\\r`` or a non-ASCII letter usually comes from a copy and paste)."""
    bad = next((c for c in value if not " " <= c <= "~"), None)
    if bad is not None:
        kind = "a control character" if bad.isascii() else "a non-ASCII character"
        raise CliError(
            f"{what} holds {kind} (U+{ord(bad):04X}) and cannot be sent: check for a stray"
            " newline, carriage return or pasted quote",
            USAGE,
        )
    return value


class ApiClient:
    """One command's connection to the API (``with ApiClient(remote) as api``)."""

    def __init__(
        self,
        remote: Remote,
        *,
        delays: tuple[float, ...] = RETRY_DELAYS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``delays``: the pauses between the attempts of a retried call; ``transport``:
        httpx's default unless a test gives one."""
        if not remote.api_key:
            raise CliError("no API key: set GOOGLE_VIDEO_API_KEY or pass --api-key", USAGE)
        self.remote = remote
        self.delays = delays
        self._reached = False
        self._http = httpx.Client(
            transport=transport,
            base_url=remote.url,
            headers={
                "Authorization": f"Bearer {remote.api_key}",
                "User-Agent": f"google-video-cli/{_version()}",
            },
            timeout=httpx.Timeout(remote.timeout, connect=min(remote.timeout, 10.0)),
            follow_redirects=False,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = False,
    ) -> Any:
        """The JSON of a successful answer; ``CliError`` for anything else."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in range(len(self.delays) + 1):
            last = attempt == len(self.delays) or not retry
            try:
                response = self._http.request(
                    method, path, json=json, params=query, files=files, headers=headers
                )
            except httpx.TransportError as exc:
                # Never reached in this command: not running, wrong URL; say so at once.
                if last or not self._reached:
                    raise self._transport_failure(exc) from None
                time.sleep(self.delays[attempt])
                continue
            self._reached = True
            if response.is_success:
                return _json_of(response, self.remote.url)
            wait = None if last else _transient_wait(response, self.delays[attempt])
            if wait is None:
                raise problem(response, self.remote.url)
            time.sleep(wait)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    @contextmanager
    def stream(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """A streamed GET of a file, following a redirect to presigned storage without
        sending the API key there."""
        try:
            with self._http.stream("GET", path, params=params) as response:
                if response.status_code in (301, 302, 303, 307, 308):
                    location = response.url.join(response.headers.get("location", ""))
                    with (
                        httpx.Client(timeout=self._http.timeout) as storage,
                        storage.stream("GET", location) as stored,
                    ):
                        if not stored.is_success:
                            stored.read()
                            raise CliError(
                                f"the storage answered HTTP {stored.status_code} for the"
                                f" presigned URL of {path}"
                            )
                        yield stored
                    return
                if not response.is_success:
                    response.read()
                    raise problem(response, self.remote.url)
                yield response
        except httpx.TransportError as exc:
            raise self._transport_failure(exc) from None

    def _transport_failure(self, exc: httpx.TransportError) -> CliError:
        url = self.remote.url
        if isinstance(exc, httpx.TimeoutException):
            return CliError(f"{url}: no answer within {self.remote.timeout:g} s (--timeout)")
        if isinstance(exc, httpx.ConnectError):
            return CliError(f"cannot reach {url}: is the service running? ({_reason(exc)})")
        return CliError(f"{url}: the connection failed: {_reason(exc)}")


def download(
    response: httpx.Response,
    target: IO[bytes],
    on_bytes: Callable[[int], None] | None = None,
) -> tuple[int, str]:
    """Copy a streamed body into ``target``; (bytes written, their SHA-256 in hex)."""
    digest = hashlib.sha256()
    count = 0
    for chunk in response.iter_bytes(CHUNK):
        target.write(chunk)
        digest.update(chunk)
        count += len(chunk)
        if on_bytes is not None:
            on_bytes(len(chunk))
    return count, digest.hexdigest()


def writable_target(path: Path) -> Path:
    """``path`` if a download may be renamed onto it: its parent an existing, writable
    folder and ``path`` itself absent or a regular file. A folder, a symbolic link, a
    device (``/dev/null``), a FIFO or a socket would be replaced by the rename, so
    ``CliError`` (exit 2) instead; ``-`` (stdout) is the way to write to a pipe."""
    parent = path.parent
    if not parent.is_dir():
        raise CliError(f"--output {path}: {parent} is not an existing folder", USAGE)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CliError(f"--output {path}: the folder {parent} is not writable", USAGE)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise CliError(f"--output {path}: {exc.strerror or exc}", USAGE) from None
    if stat.S_ISDIR(mode):
        raise CliError(f"--output {path}: is a directory: name a file in it", USAGE)
    if stat.S_ISLNK(mode):
        raise CliError(
            f"--output {path}: is a symbolic link, which would be replaced: name a file", USAGE
        )
    if not stat.S_ISREG(mode):
        raise CliError(
            f"--output {path}: not a regular file (a device, FIFO or socket), which would be"
            " replaced: name a file, or - for stdout",
            USAGE,
        )
    return path


def save_atomically(path: Path, write: Callable[[IO[bytes]], tuple[int, str]]) -> tuple[int, str]:
    """Write through ``path.part`` and rename: a failed download leaves no half file, and
    only a regular file (or nothing) is ever replaced (``writable_target``)."""
    writable_target(path)
    partial = path.with_name(path.name + ".part")
    try:
        # Never through a link or into a device or FIFO someone left under the .part name.
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK
        fd = os.open(partial, flags, 0o666)
    except OSError as exc:
        raise CliError(f"cannot write {partial}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CliError(f"cannot write {partial}: not a regular file", USAGE)
    try:
        with os.fdopen(fd, "wb") as target:
            result = write(target)
        writable_target(path)  # still a regular file (or nothing) to replace
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return result


def problem(response: httpx.Response, url: str) -> CliError:
    """The one line for an error answer: the problem's title, detail and code."""
    status = response.status_code
    body = _body(response)
    if body is None or not isinstance(body.get("code"), str):
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        return CliError(f"{url} answered HTTP {status} ({kind}): is it the google-video API?")
    detail = str(body.get("detail") or body.get("title") or "")
    code = body["code"]
    if status == 401:
        return CliError(
            f"the API key was refused: {detail} (check GOOGLE_VIDEO_API_KEY or --api-key)"
        )
    title = str(body.get("title") or f"HTTP {status}")
    where = ""
    if status >= 500 and (request_id := response.headers.get("x-request-id")):
        where = f", request id {request_id}"
    return CliError(f"{title}: {detail} ({code}{where})")


def _transient_wait(response: httpx.Response, default: float) -> float | None:
    """How long to wait before sending a refused call again, or None: not transient."""
    body = _body(response) or {}
    code = body.get("code")
    if code == "rate_limited":
        after = _retry_after(response)
        return after if after is not None and after <= MAX_RETRY_AFTER else None
    if response.status_code in _TRANSIENT_STATUS and code in (None, "unavailable"):
        return max(default, min(_retry_after(response) or 0.0, MAX_RETRY_AFTER))
    if code in _TRANSIENT_CODES:
        return default
    return None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


def _body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _json_of(response: httpx.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        raise CliError(
            f"{url} answered HTTP {response.status_code} with {kind}, not JSON:"
            " is it the google-video API?"
        ) from None


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.removeprefix("[Errno 111] ")


def _version() -> str:
    try:
        return metadata.version("google-video")
    except metadata.PackageNotFoundError:
        return "0"
