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

``RefusingProxy(upstream, flexible_checksums=True)`` is a store that takes S3's flexible
checksums instead, and checks them as AWS S3 does ("Checking object integrity"): a
checksum header that is not its body's is 400 ``BadDigest``; an UploadPart of an upload
created with ``x-amz-checksum-algorithm`` must carry that algorithm's checksum, and its
CompleteMultipartUpload must list each part's (unless the algorithm is CRC64NVME, full
object only): 400 ``InvalidRequest``, worded as AWS S3 answers (quoted in
apache/opendal#4580; versity/versitygw#1342 for a part without it); a DeleteObjects may
carry a flexible checksum instead of ``Content-MD5``. What it checked is in ``Seen.checksum``.

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
import xml.etree.ElementTree as ElementTree
import zlib
from collections.abc import Callable
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
# x-amz-checksum-* headers that name an algorithm, a type or a mode rather than carry a value.
CHECKSUM_HEADERS_NOT_VALUES = frozenset(
    {"x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode"}
)
# The flexible checksums this proxy computes to check a declared one (raw digests).
CHECKSUMS: dict[str, Callable[[bytes], bytes]] = {
    "CRC32": lambda body: zlib.crc32(body).to_bytes(4, "big"),
    "SHA1": lambda body: hashlib.sha1(body, usedforsecurity=False).digest(),
    "SHA256": lambda body: hashlib.sha256(body).digest(),
}
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
    # The flexible checksum algorithm the proxy checked on it (a header, or every part
    # of a CompleteMultipartUpload), with ``flexible_checksums`` on.
    checksum: str | None = None


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

    def __init__(
        self, upstream: str, *, secret_key: str = MOTO_SECRET, flexible_checksums: bool = False
    ) -> None:
        self.upstream = urlsplit(upstream)
        self.secret_key = secret_key
        self.checksums = FlexibleChecksums() if flexible_checksums else None
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

    def check(self, method: str, target: str, headers: dict[str, str], body: bytes) -> str | None:
        """Raise Refusal for what a strict store would refuse; return to forward (with the
        flexible checksum algorithm checked, if any)."""
        if self.unavailable:
            raise Refusal(503, "ServiceUnavailable", "The store is unavailable (test switch).")
        if self.refuse_deletes and (method == "DELETE" or "delete" in target):
            raise Refusal(503, "ServiceUnavailable", "Deletes are unavailable (test switch).")
        if self.checksums is None:
            for name in headers:
                if name.startswith(FLEXIBLE_CHECKSUM_HEADERS):
                    raise Refusal(400, "InvalidArgument", f"Unsupported header {name!r}.")
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if method == "PUT" and "partNumber" in query:
            self._part_arrived(int(query["partNumber"]))
        _check_signature(self.secret_key, method, target, headers, list(query.items()))
        _check_payload_hash(headers, body)
        checked = None
        if self.checksums is not None:
            checked = self.checksums.check(method, parts.path, query, headers, body)
        if method == "POST" and "delete" in query and checked is None:
            _check_content_md5(headers, body)
        return checked

    def _part_arrived(self, number: int) -> None:
        with self._parts_arrived:
            self._highest_part = max(self._highest_part, number)
            self._parts_arrived.notify_all()
            if number != self.refuse_part:
                return
            # Bounded: with fewer parts than that, it fails alone rather than hanging.
            self._parts_arrived.wait_for(lambda: self._highest_part > number, timeout=10)
        raise Refusal(403, "AccessDenied", f"Part {number} is refused (test switch).")


class FlexibleChecksums:
    """What AWS S3 checks of flexible checksums, request by request (uploads are told
    apart by object path: one upload per key at a time, as the tests make them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._algorithms: dict[str, str] = {}  # object path -> its upload's algorithm
        self._parts: dict[tuple[str, str], str] = {}  # (path, part number) -> checksum

    def check(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> str | None:
        declared = _declared_checksum(headers, body)
        if method == "POST" and "uploads" in query:
            algorithm = headers.get("x-amz-checksum-algorithm", "").upper()
            with self._lock:
                self._algorithms[path] = algorithm
            return algorithm or None
        if method == "PUT" and "partNumber" in query:
            return self._part(path, query["partNumber"], declared)
        if method == "POST" and "uploadId" in query:
            return self._complete(path, body)
        return declared[0] if declared else None

    def _part(self, path: str, number: str, declared: tuple[str, str] | None) -> str | None:
        with self._lock:
            expected = self._algorithms.get(path, "")
        actual = declared[0] if declared else "null"
        if expected and actual != expected:
            raise Refusal(
                400,
                "InvalidRequest",
                f"Checksum Type mismatch occurred, expected checksum Type: {expected.lower()},"
                f" actual checksum Type: {actual.lower()}",
            )
        if declared:
            with self._lock:
                self._parts[path, number] = declared[1]
        return declared[0] if declared else None

    def _complete(self, path: str, body: bytes) -> str | None:
        with self._lock:
            algorithm = self._algorithms.pop(path, "")
            stored = {n: v for (p, n), v in self._parts.items() if p == path}
        if algorithm in ("", "CRC64NVME"):
            return None
        for part in _xml_elements(body, "Part"):
            number = _xml_text(part, "PartNumber")
            checksum = _xml_text(part, f"Checksum{algorithm}")
            if checksum is None:
                raise Refusal(
                    400,
                    "InvalidRequest",
                    f"The upload was created using a {algorithm.lower()} checksum. The complete"
                    " request must include the checksum for each part. It was missing for part"
                    f" {number} in the request.",
                )
            if checksum != stored.get(number or ""):
                raise Refusal(400, "InvalidPart", f"Part {number}'s checksum does not match.")
        return algorithm


def _declared_checksum(headers: dict[str, str], body: bytes) -> tuple[str, str] | None:
    """The (algorithm, value) of the request's ``x-amz-checksum-<algorithm>`` header, after
    checking it against the body where this proxy can compute it."""
    found = [
        (name.removeprefix("x-amz-checksum-").upper(), value)
        for name, value in headers.items()
        if name.startswith("x-amz-checksum-") and name not in CHECKSUM_HEADERS_NOT_VALUES
    ]
    if not found:
        return None
    algorithm, value = found[0]
    compute = CHECKSUMS.get(algorithm)
    if compute is not None and value != base64.b64encode(compute(body)).decode():
        raise Refusal(400, "BadDigest", f"The {algorithm} you specified did not match the body.")
    return algorithm, value


def _xml_elements(document: bytes, name: str) -> list[ElementTree.Element]:
    # The tests' own boto3 clients wrote it (defusedxml guards against hostile documents).
    root = ElementTree.fromstring(document)  # noqa: S314
    return [e for e in root.iter() if _local(e.tag) == name]


def _xml_text(element: ElementTree.Element, name: str) -> str | None:
    return next((c.text for c in element if _local(c.tag) == name), None)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


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
                checked = proxy.check(self.command, self.path, headers, body)
            except Refusal as refusal:
                proxy.seen.append(Seen(self.command, self.path, refusal.code))
                self._refuse(refusal)
                return
            proxy.seen.append(Seen(self.command, self.path, None, checked))
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
