from __future__ import annotations

from typing import Any, cast

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from core.storage import ObjectNotFound, StorageError, TransientStorageError
from core.storage.s3_errors import translate_error


def _client_error(code: str, status: int) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(cast(Any, response), "GetObject")


@pytest.mark.parametrize(("code", "status"), [("NoSuchKey", 404), ("404", 404)])
def test_missing_key_is_object_not_found(code: str, status: int) -> None:
    assert type(translate_error(_client_error(code, status))) is ObjectNotFound


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("SlowDown", 503),
        ("InternalError", 500),
        ("Throttling", 400),
        ("RequestTimeout", 400),
        ("", 502),
        ("TooManyRequests", 429),
    ],
)
def test_server_errors_and_throttling_are_transient(code: str, status: int) -> None:
    assert type(translate_error(_client_error(code, status))) is TransientStorageError


@pytest.mark.parametrize(
    ("code", "status"), [("AccessDenied", 403), ("NoSuchBucket", 404), ("InvalidArgument", 400)]
)
def test_client_errors_are_permanent(code: str, status: int) -> None:
    assert type(translate_error(_client_error(code, status))) is StorageError


def test_connection_failures_are_transient() -> None:
    assert isinstance(
        translate_error(EndpointConnectionError(endpoint_url="http://127.0.0.1:1")),
        TransientStorageError,
    )
    assert isinstance(
        translate_error(ReadTimeoutError(endpoint_url="http://127.0.0.1:1")), TransientStorageError
    )


def test_missing_credentials_are_permanent() -> None:
    assert type(translate_error(NoCredentialsError())) is StorageError


def test_message_names_operation_and_code() -> None:
    assert "GetObject: AccessDenied" in str(translate_error(_client_error("AccessDenied", 403)))


@pytest.mark.parametrize(("code", "status"), [("NotImplemented", 501), ("", 501)])
def test_what_the_store_does_not_implement_is_permanent(code: str, status: int) -> None:
    assert type(translate_error(_client_error(code, status))) is StorageError


@pytest.mark.parametrize(
    ("code", "status"),
    [("InvalidArgument", 400), ("NotImplemented", 501), ("MissingContentMD5", 400)],
)
def test_a_refusal_of_flexible_checksums_names_the_setting_that_sends_them(
    code: str, status: int
) -> None:
    refused = translate_error(_client_error(code, status), checksum_algorithm="CRC32")

    assert type(refused) is StorageError
    assert "S3_CHECKSUM_ALGORITHM is CRC32" in str(refused)
    assert "S3_CHECKSUM_ALGORITHM" not in str(translate_error(_client_error(code, status)))


def test_other_errors_do_not_blame_the_checksum_setting() -> None:
    refused = translate_error(_client_error("AccessDenied", 403), checksum_algorithm="CRC32")

    assert "S3_CHECKSUM_ALGORITHM" not in str(refused)
