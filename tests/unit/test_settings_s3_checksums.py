"""S3_CHECKSUM_ALGORITHM: S3's flexible checksums, off unless an operator names one."""

from __future__ import annotations

import importlib.util
from typing import Any, get_args

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import FlexibleChecksumError, MissingDependencyException
from botocore.httpchecksum import resolve_request_checksum_algorithm
from pydantic import ValidationError

from schemas.settings import S3ChecksumAlgorithm, Settings

AWSCRT = importlib.util.find_spec("awscrt") is not None


pytestmark = pytest.mark.usefixtures("clean_env")


def _accepted(value: str) -> str | None:
    try:
        return Settings(s3_checksum_algorithm=value).s3_checksum_algorithm
    except ValidationError:
        return None


def _botocore_computes(algorithm: str) -> bool:
    """Whether botocore would compute ``algorithm`` for a PutObject (it raises, before
    sending anything, for an algorithm it cannot compute)."""
    operation = botocore.session.get_session().get_service_model("s3").operation_model("PutObject")
    request: dict[str, Any] = {
        "url": "http://127.0.0.1/bucket/key",
        "headers": {},
        "context": {"client_config": Config(request_checksum_calculation="when_supported")},
    }
    try:
        resolve_request_checksum_algorithm(request, operation, {"ChecksumAlgorithm": algorithm})
    except (MissingDependencyException, FlexibleChecksumError):
        return False
    return True


@pytest.mark.parametrize("value", [None, "", "  "])
def test_no_checksum_algorithm_unless_one_is_named(
    value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is not None:
        monkeypatch.setenv("GOOGLE_VIDEO_S3_CHECKSUM_ALGORITHM", value)
    assert Settings().s3_checksum_algorithm is None


@pytest.mark.parametrize(("value", "stored"), [("crc32", "CRC32"), (" Sha256 ", "SHA256")])
def test_the_checksum_algorithm_is_read_in_any_case_and_stored_in_capitals(
    value: str, stored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_VIDEO_S3_CHECKSUM_ALGORITHM", value)
    assert Settings().s3_checksum_algorithm == stored


@pytest.mark.parametrize("value", ["md5", "SHA512", "crc16", "CRC-32"])
def test_an_unknown_checksum_algorithm_is_refused_naming_the_usable_ones(value: str) -> None:
    with pytest.raises(ValidationError, match=r"S3_CHECKSUM_ALGORITHM .* is none of CRC32, SHA1"):
        Settings(s3_checksum_algorithm=value)


@pytest.mark.skipif(AWSCRT, reason="awscrt is installed: botocore computes CRC32C")
@pytest.mark.parametrize("value", ["crc32c", "CRC64NVME"])
def test_an_algorithm_that_needs_awscrt_is_refused_without_it(value: str) -> None:
    with pytest.raises(ValidationError, match=r"needs the awscrt package .* CRC32, SHA1, SHA256"):
        Settings(s3_checksum_algorithm=value)


@pytest.mark.parametrize("algorithm", get_args(S3ChecksumAlgorithm))
def test_the_setting_accepts_exactly_what_the_installed_botocore_computes(algorithm: str) -> None:
    assert (_accepted(algorithm) == algorithm) is _botocore_computes(algorithm)
