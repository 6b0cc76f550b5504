"""The one place that maps botocore failures to the storage error tree."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from core.storage.base import ObjectNotFound, StorageError, TransientStorageError

NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
    }
)
# 501 says the store does not implement what was asked: asking again will not help.
PERMANENT_CODES = frozenset({"NotImplemented"})
# What stores without S3's flexible checksums answer a request carrying them: an unknown
# x-amz-checksum-* header (InvalidArgument, R2 once NotImplemented: aws-sdk-js-v3 issue
# 6810), or a DeleteObjects without the Content-MD5 they require (MissingContentMD5).
CHECKSUM_REFUSALS = frozenset(
    {"InvalidArgument", "InvalidRequest", "NotImplemented", "MissingContentMD5"}
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def translate_error(
    exc: BotoCoreError | ClientError, checksum_algorithm: str | None = None
) -> StorageError:
    """A StorageError subclass for a botocore failure, to ``raise … from exc``.

    ``checksum_algorithm``: the flexible checksum the client sends, if any; a refusal that
    may be the store's of flexible checksums then says to leave it unset for this store.
    """
    if isinstance(exc, ClientError):
        code, status = error_code(exc), http_status(exc)
        detail = exc.response.get("Error", {}).get("Message", "")
        message = f"S3 {exc.operation_name}: {code or status} {detail}".rstrip()
        if checksum_algorithm and code in CHECKSUM_REFUSALS:
            message += (
                f" (S3_CHECKSUM_ALGORITHM is {checksum_algorithm}: if this store does not take"
                " S3's flexible checksums, leave it empty)"
            )
        if code in NOT_FOUND_CODES:
            return ObjectNotFound(message)
        if code in PERMANENT_CODES or status == 501:
            return StorageError(message)
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientStorageError(message)
        return StorageError(message)
    if isinstance(exc, BotoConnectionError | HTTPClientError | IncompleteReadError):
        return TransientStorageError(f"S3 transport: {exc}")
    return StorageError(f"S3: {exc}")
