"""Which request checksums the S3 client sends: by default those every S3-compatible store
accepts (Content-MD5 where S3 requires one, never a flexible checksum); S3's flexible
checksums with one algorithm for stores that implement them.

botocore ≥ 1.36 replaced the Content-MD5 it used to send where S3 requires a checksum
(DeleteObjects) with a CRC32 ``x-amz-checksum-crc32`` and ``x-amz-sdk-checksum-algorithm``,
even with ``request_checksum_calculation="when_required"`` (the default-integrity change
announced in https://github.com/boto/boto3/issues/4392). Stores that predate flexible
checksums (older MinIO, Ceph RGW, COS, …) answer ``MissingContentMD5`` or refuse the unknown
headers; AWS S3 accepts Content-MD5 as before. No configuration brings Content-MD5 back, so a
handler on botocore's documented ``before-sign`` event rewrites each request before it is
signed.

With an algorithm (``S3_CHECKSUM_ALGORITHM``) botocore computes that checksum of every
upload's body and the store checks it: per part in a multipart upload, whose object
checksum is then a checksum of the part checksums (a COMPOSITE checksum, ``…-<parts>``;
CRC64NVME is FULL_OBJECT only). See "Checking object integrity" in the Amazon S3 User
Guide, https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any, Literal, cast

from botocore.awsrequest import AWSRequest
from botocore.model import OperationModel

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FLEXIBLE_HEADERS = ("x-amz-checksum-", "x-amz-sdk-checksum-algorithm")

# S3's names, as in the ChecksumAlgorithm parameter (schemas.settings lists the same).
ChecksumAlgorithm = Literal["CRC32", "SHA1", "SHA256", "CRC32C", "CRC64NVME"]
# The response and CompletedPart member holding a checksum of that algorithm.
ChecksumMember = Literal[
    "ChecksumCRC32", "ChecksumSHA1", "ChecksumSHA256", "ChecksumCRC32C", "ChecksumCRC64NVME"
]


def use_content_md5(client: S3Client) -> None:
    """Make every request of ``client`` carry Content-MD5 where the operation requires a
    checksum, and no flexible-checksum header at all.

    Pair it with ``request_checksum_calculation`` and ``response_checksum_validation`` set
    to ``"when_required"``: then botocore adds a flexible checksum only to operations that
    require one, whose bodies are small XML documents sent whole (never ``aws-chunked``
    trailers, which this handler could not rewrite).
    """
    model = client.meta.service_model

    def before_sign(request: AWSRequest, operation_name: str, **_: Any) -> None:
        for name in [n for n in request.headers if n.lower().startswith(FLEXIBLE_HEADERS)]:
            del request.headers[name]
        if requires_checksum(model.operation_model(operation_name)):
            request.headers["Content-MD5"] = content_md5(request.body)

    client.meta.events.register("before-sign.s3", before_sign)


def checksum_member(algorithm: ChecksumAlgorithm) -> ChecksumMember:
    """``ChecksumCRC32`` for ``CRC32``: where UploadPart answers the part's checksum and
    where CompleteMultipartUpload's part list carries it back."""
    return cast(ChecksumMember, f"Checksum{algorithm}")


def requires_checksum(operation: OperationModel) -> bool:
    """Whether S3 refuses the operation without a body checksum (DeleteObjects,
    PutBucketLifecycleConfiguration, …), as the service model declares it."""
    return bool(
        operation.http_checksum_required
        or operation.http_checksum.get("requestChecksumRequired", False)
    )


def content_md5(body: bytes | str | None) -> str:
    """The ``Content-MD5`` header value of ``body`` (text as UTF-8): base64 of its MD5."""
    data = body.encode() if isinstance(body, str) else body or b""
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")
