"""Breaker probes of S3_CHECKSUM_ALGORITHM's reading (c3aae2d): an operator's value in any
ASCII case with surrounding whitespace names an algorithm; a look-alike that only Python's
Unicode case mapping turns into one (U+017F LATIN SMALL LETTER LONG S, upper-cases
to ``S``) is not that algorithm's name and is refused like any other unknown value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.settings import Settings

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.mark.parametrize(
    ("value", "stored"),
    [("\tcrc32\n", "CRC32"), ("sHa1", "SHA1"), ("\u00a0sha256\u3000", "SHA256")],
)
def test_ascii_names_in_any_case_and_whitespace_are_read(value: str, stored: str) -> None:
    assert Settings(s3_checksum_algorithm=value).s3_checksum_algorithm == stored


@pytest.mark.parametrize(
    "value",
    [
        "\u017fha1",  # long s + 'ha1'
        "\u017fha256",  # long s + 'ha256'
        "\uff23\uff32\uff23\uff13\uff12",  # fullwidth CRC32
        "\u200bCRC32",  # zero-width space
        "CRC\u0033\u0332",  # combining low line
        "crc32\x00",
    ],
)
def test_a_look_alike_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="S3_CHECKSUM_ALGORITHM"):
        Settings(s3_checksum_algorithm=value)
