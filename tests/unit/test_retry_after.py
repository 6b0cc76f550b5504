"""The one Retry-After reader (RFC 9110 §10.2.3), hostile values included."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.retry_after import MAX_SECONDS, parse_retry_after

NOW = datetime(2025, 6, 18, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("5", 5.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("007", 7.0),
        ("3600", 3600.0),
    ],
)
def test_delay_seconds(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "-3",
        "-0",
        "+5",
        "soon",
        "5 seconds",
        "1e3",
        "inf",
        "nan",
        "0x10",
        "²",  # isdigit() says yes; it is no delay-seconds
        "５",  # noqa: RUF001 -- a full-width digit, on purpose
        "٣",  # an Arabic-Indic digit
        "12\x00",
        "1,5",
        "Wed, 31 Feb 2015 07:28:00 GMT",  # no such day
        "Wed, 21 Oct 99999 07:28:00 GMT",  # no such year for datetime
        "Wed, 21 Oct 2015 07:28:00 +9999",  # no such offset
        "Wéd, 21 Oct 2015 07:28:00 GMT",
    ],
)
def test_garbage_negative_and_non_ascii_values_are_no_hint(value):
    assert parse_retry_after(value, now=NOW) is None


def test_huge_numbers_are_clamped_not_overflowing():
    assert parse_retry_after("9" * 30, now=NOW) == MAX_SECONDS
    assert parse_retry_after("9" * 5000, now=NOW) == MAX_SECONDS


def test_http_date_in_the_future_is_the_seconds_until_it():
    when = format_datetime(NOW + timedelta(seconds=90), usegmt=True)

    assert parse_retry_after(when, now=NOW) == 90.0


def test_http_date_in_the_past_means_now():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=NOW) == 0.0


def test_obsolete_date_forms_are_read_as_utc():
    rfc850 = "Wednesday, 18-Jun-25 12:01:00 GMT"
    asctime = "Wed Jun 18 12:02:00 2025"

    assert parse_retry_after(rfc850, now=NOW) == 60.0
    assert parse_retry_after(asctime, now=NOW) == 120.0


def test_far_future_date_is_clamped():
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=NOW) == MAX_SECONDS


def test_default_now_is_the_current_time():
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)

    seconds = parse_retry_after(when)

    assert seconds is not None and 100 < seconds <= 120


@given(st.text(max_size=64))
def test_any_text_gives_none_or_a_bounded_non_negative_number(value):
    seconds = parse_retry_after(value, now=NOW)

    assert seconds is None or 0.0 <= seconds <= MAX_SECONDS
