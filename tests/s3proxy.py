"""A reverse proxy in front of an S3 endpoint (moto) that refuses what strict S3-compatible
stores refuse, so the tests see what MinIO, Ceph, COS and their like would answer.

Refused with an S3 error document:

- any ``x-amz-checksum-*``, ``x-amz-sdk-checksum-algorithm`` or ``x-amz-trailer`` header
  (stores that predate S3's flexible checksums): 400 ``InvalidArgument``;
- a DeleteObjects (``POST /bucket?delete``) without a ``Content-MD5`` of its body: 400
  ``MissingContentMD5``, or ``BadDigest`` when it does not match;
- SigV2 (``AWSAccessKeyId=`` in the query, ``Authorization: AWS …``), an unsigned request,
  a SigV4 signature that is not valid for the request as received (host included), an
  expired presigned URL, or an ``x-amz-content-sha256`` that is not the body's: 403 or 400;
- a body without ``Content-Length`` (chunked): 411 ``MissingContentLength``;
- everything, with ``unavailable`` set: 503 ``ServiceUnavailable``;
- the UploadPart numbered ``refuse_part``, once a later part has arrived too (so other
  parts are in flight when it fails): 403 ``AccessDenied``, which no client retries.

Signatures are recomputed with botocore's own SigV4 signers and the shared secret, so a
presigned URL rewritten to another host after signing is refused as a real store would.
It runs in a thread of the test process (``with RefusingProxy(upstream) as proxy``); worker
processes reach it over TCP like any endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cli.supervise import HOST

FLEXIBLE_CHECKSUM_HEADERS = ("x-amz-checksum-", "x-amz-sdk-checksum-algorithm", "x-amz-trailer")
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
SIGV4_TIME = "%Y%m%dT%H%M%SZ"
CHUNK = 64 * 1024
MOTO_SECRET = "test"  # moto accepts any credentials; the tests use test/test


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it: ``refused`` is the S3 error code, or None if it
    was forwarded."""

    method: str
    target: str
    refused: str | None


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class RefusingProxy:
    """``RefusingProxy("http://127.0.0.1:5000")``: a strict store at ``proxy.url``.

        ``secret_key`` is the secret of every access key (moto's test credentials);
        ``unavailable`` makes every answer a 503 until it is cleared, ``refuse_deletes`` only the
    answers to deletes; ``seen`` records each
        request in arrival order.
    """

    def __init__(self, upstream: str, *, secret_key: str = MOTO_SECRET) -> None:
        self.upstream = urlsplit(upstream)
        self.secret_key = secret_key
        self.unavailable = False
        self.refuse_deletes = False
        self.refuse_part: int | None = None
        self.seen: list[Seen] = []
        self._parts_arrived = threading.Condition()
        self._highest_part = 0
        self._server = ThreadingHTTPServer((HOST, 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def refused(self, code: str | None = None) -> list[Seen]:
        """The refused requests so far (only those refused with ``code``, if given)."""
        return [s for s in self.seen if s.refused and (code is None or s.refused == code)]

    def __enter__(self) -> RefusingProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def check(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        """Raise Refusal for what a strict store would refuse; return to forward."""
        if self.unavailable:
            raise Refusal(503, "ServiceUnavailable", "The store is unavailable (test switch).")
        if self.refuse_deletes and (method == "DELETE" or "delete" in target):
            raise Refusal(503, "ServiceUnavailable", "Deletes are unavailable (test switch).")
        for name in headers:
            if name.startswith(FLEXIBLE_CHECKSUM_HEADERS):
                raise Refusal(400, "InvalidArgument", f"Unsupported header {name!r}.")
        parts = urlsplit(target)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if method == "PUT" and "partNumber" in dict(query):
            self._part_arrived(int(dict(query)["partNumber"]))
        _check_signature(self.secret_key, method, target, headers, query)
        _check_payload_hash(headers, body)
        if method == "POST" and "delete" in dict(query):
            _check_content_md5(headers, body)

    def _part_arrived(self, number: int) -> None:
        with self._parts_arrived:
            self._highest_part = max(self._highest_part, number)
            self._parts_arrived.notify_all()
            if number != self.refuse_part:
                return
            # Bounded: with fewer parts than that, it fails alone rather than hanging.
            self._parts_arrived.wait_for(lambda: self._highest_part > number, timeout=10)
        raise Refusal(403, "AccessDenied", f"Part {number} is refused (test switch).")


def _check_signature(
    secret: str, method: str, target: str, headers: dict[str, str], query: list[tuple[str, str]]
) -> None:
    params = dict(query)
    authorization = headers.get("authorization", "")
    if "AWSAccessKeyId" in params or authorization.startswith("AWS "):
        raise Refusal(400, "InvalidRequest", "Signature Version 2 is not supported; use SigV4.")
    if "X-Amz-Signature" in params:
        _check_presigned(secret, method, target, headers, params)
        return
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        raise Refusal(403, "AccessDenied", "Anonymous requests are not allowed.")
    fields = dict(
        item.strip().split("=", 1)
        for item in authorization.removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    signed = fields["SignedHeaders"].split(";")
    expected = _signature(
        S3SigV4Auth,
        secret,
        method,
        target,
        headers,
        signed,
        fields["Credential"],
        headers.get("x-amz-date", ""),
    )
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise Refusal(403, "SignatureDoesNotMatch", "The request signature does not match.")


def _check_presigned(
    secret: str, method: str, target: str, headers: dict[str, str], params: dict[str, str]
) -> None:
    path, _, query = target.partition("?")
    unsigned = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Signature="))
    timestamp = params["X-Amz-Date"]
    expected = _signature(
        S3SigV4QueryAuth,
        secret,
        method,
        f"{path}?{unsigned}",
        headers,
        params["X-Amz-SignedHeaders"].split(";"),
        params["X-Amz-Credential"],
        timestamp,
    )
    if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
        raise Refusal(403, "SignatureDoesNotMatch", "The presigned URL's signature does not match.")
    signed_at = datetime.strptime(timestamp, SIGV4_TIME).replace(tzinfo=UTC)
    if datetime.now(UTC) > signed_at + timedelta(seconds=int(params["X-Amz-Expires"])):
        raise Refusal(403, "AccessDenied", "Request has expired.")


def _signature(
    signer_class: type[SigV4Auth],
    secret: str,
    method: str,
    target: str,
    headers: dict[str, str],
    signed: list[str],
    credential: str,
    timestamp: str,
) -> str:
    """The SigV4 signature botocore would compute for this request as received."""
    access_key, _, region, service, _ = credential.split("/")
    signer = signer_class(Credentials(access_key, secret), service, region)
    request = AWSRequest(
        method=method,
        url=f"http://{headers.get('host', '')}{target}",
        headers={name: headers.get(name, "") for name in signed},
    )
    request.context["timestamp"] = timestamp
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


def _check_payload_hash(headers: dict[str, str], body: bytes) -> None:
    declared = headers.get("x-amz-content-sha256", "")
    if len(declared) == 64 and declared != hashlib.sha256(body).hexdigest():
        raise Refusal(400, "XAmzContentSHA256Mismatch", "x-amz-content-sha256 is not the body's.")


def _check_content_md5(headers: dict[str, str], body: bytes) -> None:
    declared = headers.get("content-md5")
    if declared is None:
        raise Refusal(
            400, "MissingContentMD5", "Missing required header for this request: Content-Md5."
        )
    if declared != base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode():
        raise Refusal(400, "BadDigest", "The Content-MD5 you specified did not match.")


def _handler(proxy: RefusingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_request(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                body = self._body(headers)
                proxy.check(self.command, self.path, headers, body)
            except Refusal as refusal:
                proxy.seen.append(Seen(self.command, self.path, refusal.code))
                self._refuse(refusal)
                return
            proxy.seen.append(Seen(self.command, self.path, None))
            self._forward(headers, body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_request

        def _body(self, headers: dict[str, str]) -> bytes:
            if "chunked" in headers.get("transfer-encoding", ""):
                self.close_connection = True
                raise Refusal(411, "MissingContentLength", "Chunked bodies are not supported.")
            return self.rfile.read(int(headers.get("content-length", "0")))

        def _refuse(self, refusal: Refusal) -> None:
            document = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f"<Error><Code>{refusal.code}</Code><Message>{refusal.message}</Message></Error>"
            ).encode()
            self.send_response(refusal.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(document)

        def _forward(self, headers: dict[str, str], body: bytes) -> None:
            upstream = http.client.HTTPConnection(
                proxy.upstream.hostname or HOST, proxy.upstream.port, timeout=60
            )
            try:
                forwarded = {k: v for k, v in headers.items() if k not in HOP_BY_HOP}
                forwarded["host"] = proxy.upstream.netloc
                upstream.request(self.command, self.path, body=body or None, headers=forwarded)
                response = upstream.getresponse()
                self._relay(response)
            finally:
                upstream.close()

        def _relay(self, response: http.client.HTTPResponse) -> None:
            length = response.getheader("content-length")
            content = response.read() if length is None else None
            self.send_response_only(response.status)  # the store's own Date and Server
            for name, value in response.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            size = str(len(content)) if content is not None else length or "0"
            self.send_header("Content-Length", size)
            self.end_headers()
            if self.command == "HEAD":
                return
            if content is not None:
                self.wfile.write(content)
                return
            while chunk := response.read(CHUNK):
                self.wfile.write(chunk)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the test records what it needs in proxy.seen

    return Handler
