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


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def translate_error(exc: BotoCoreError | ClientError) -> StorageError:
    """A StorageError subclass for a botocore failure, to ``raise … from exc``."""
    if isinstance(exc, ClientError):
        code, status = error_code(exc), http_status(exc)
        detail = exc.response.get("Error", {}).get("Message", "")
        message = f"S3 {exc.operation_name}: {code or status} {detail}".rstrip()
        if code in NOT_FOUND_CODES:
            return ObjectNotFound(message)
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientStorageError(message)
        return StorageError(message)
    if isinstance(exc, BotoConnectionError | HTTPClientError | IncompleteReadError):
        return TransientStorageError(f"S3 transport: {exc}")
    return StorageError(f"S3: {exc}")
