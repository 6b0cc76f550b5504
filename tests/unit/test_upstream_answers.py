"""Searching providers' JSON answers for what moves around: the video URL, safety signs."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.upstream.answers import as_url, find_video_url, first_video_url, safety_filtered

VIDEO = "https://cdn.example/v/abc.mp4"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (VIDEO, VIDEO),
        (f"  {VIDEO}\n", VIDEO),
        ("HTTP://CDN.EXAMPLE/x", "HTTP://CDN.EXAMPLE/x"),
        ([VIDEO, "https://cdn.example/2.mp4"], VIDEO),
        ({"url": VIDEO}, VIDEO),
        ({"uri": VIDEO}, VIDEO),
        ([], None),
        ({}, None),
        ("ftp://cdn.example/v.mp4", None),
        ("javascript:alert(1)", None),
        ("https://", None),
        ("https:///path", None),
        ("https://cdn.example/a b.mp4", None),
        ("https://[::1/x", None),
        (42, None),
        (None, None),
    ],
)
def test_as_url(value, expected):
    assert as_url(value) == expected


def test_first_video_url_skips_images_and_site_roots():
    assert first_video_url("", "https://cdn.example/", "https://i.example/a.PNG", VIDEO) == VIDEO


def test_find_prefers_a_video_file_found_later_over_another_url_found_first():
    answer = {"a": {"link": "https://cdn.example/get?id=1"}, "b": [{"c": VIDEO}]}

    assert find_video_url(answer) == VIDEO


def test_find_takes_a_key_that_says_video_as_a_video():
    assert find_video_url({"x": {"videoLink": "https://cdn.example/get?id=1"}}) == (
        "https://cdn.example/get?id=1"
    )


def test_find_skips_everything_under_a_key_that_names_something_else_at_any_depth():
    answer = {
        "images": [{"url": "https://img.example/get?id=1"}],
        "request": {"body": {"link": "https://img.example/get?id=2"}},
        "notify_hook": {"target": {"href": "https://us.example/callback/x"}},
        "result": {"files": [{"href": "https://cdn.example/get?id=3"}]},
    }

    assert find_video_url(answer) == "https://cdn.example/get?id=3"


def test_find_ignores_document_pages_in_text_and_takes_other_urls_there_last():
    assert find_video_url({"msg": "see https://docs.example/help for details"}) is None
    assert find_video_url({"msg": "notice: https://example.com/notice/12"}) is None
    assert find_video_url({"msg": f"done: {VIDEO}."}) == VIDEO
    assert find_video_url({"msg": "视频地址: https://cdn.example/v/abc。"}) == (
        "https://cdn.example/v/abc"
    )
    answer = {"msg": "at https://cdn.example/v/text", "other": {"link": "https://cdn.example/x"}}
    assert find_video_url(answer) == "https://cdn.example/x"


def test_find_is_bounded_on_deep_and_wide_answers():
    deep: Any = VIDEO
    for _ in range(50):
        deep = {"d": deep}
    assert find_video_url(deep) == VIDEO  # 50 levels: still an answer's field
    for _ in range(50):
        deep = {"d": deep}
    assert find_video_url(deep) is None  # 100 levels: too deep to be one
    wide = {"items": [{"n": i} for i in range(10_000)] + [{"url": VIDEO}]}
    assert find_video_url(wide) == VIDEO  # 20,000 nodes: within the budget
    wider = {"items": [{"n": i} for i in range(30_000)] + [{"url": VIDEO}]}
    assert find_video_url(wider) is None  # beyond the node budget: stop, never hang


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=40),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=40,
    )
)
def test_any_json_gives_none_or_an_http_url(answer):
    found = find_video_url(answer)
    filtered, reasons = safety_filtered(answer)

    assert found is None or found.lower().startswith(("http://", "https://"))
    assert isinstance(filtered, bool) and (reasons is None or isinstance(reasons, str))


def test_safety_reasons_are_collected_once_each():
    answer = {
        "a": {"raiMediaFilteredReasons": ["r1", "r2"]},
        "b": {"rai_media_filtered_reasons": ["r1"], "raiMediaFilteredCount": 2},
    }

    assert safety_filtered(answer) == (True, "r1; r2")


@pytest.mark.parametrize(
    "answer",
    [
        {"raiMediaFilteredCount": 0},
        {"raiMediaFilteredCount": True},
        {"raiMediaFilteredCount": "none"},
        {"raiMediaFilteredReasons": ["", "  "]},
        {"other": 1},
    ],
)
def test_no_safety_sign(answer):
    assert safety_filtered(answer) == (False, None)
