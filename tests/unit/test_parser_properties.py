"""Property tests of the hand-written parsers at the API boundary: whatever text or bytes
come in, each answers a value or its one documented error (a ``ProblemError`` with a 4xx
status and a stable code), never another exception."""

from __future__ import annotations

import asyncio
import base64
import json
import string
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from core.callback import task_of, token
from core.ids import new_id
from core.images import MAX_IMAGE_BYTES, ImageError, decode_data_uri, encode_data_uri, sniff_image
from schemas.api import CreditsQuery, EventListQuery, VideoCreate, VideoListQuery
from schemas.problems import STATUS, Code
from service import params
from service.body import MAX_JSON_DEPTH, MAX_JSON_VALUES, loads, parse, within_depth
from service.creation import InputImage, split_images
from service.errors import ProblemError
from service.routes.videos import _form

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 8
IMAGES = st.sampled_from([("image/png", PNG), ("image/jpeg", JPEG), ("image/webp", WEBP)])
# Text as it arrives: any code point (lone surrogates come only from JSON escapes, which
# orjson refuses before any parser here sees them).
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
DIGITS = st.sampled_from("0123456789\u00b2\u0663\uff11_ +-x.e")


def assert_problem(exc: ProblemError, *codes: Code) -> None:
    assert exc.code in codes, exc.code
    assert 400 <= STATUS[exc.code] < 500


# --- data URIs and image URLs ----------------------------------------------------------


@given(IMAGES, st.binary(max_size=64))
def test_a_data_uri_of_an_image_decodes_to_its_bytes(image: tuple[str, bytes], tail: bytes):
    mime, head = image
    data = head + tail
    assert decode_data_uri(encode_data_uri(mime, data), position=0) == (mime, data)


@given(ANY_TEXT)
@example("data:image/png;base64,")
@example("data:image/png;base64,!!!")
@example("data:image/svg+xml;base64,PHN2Zz4=")
@example("data:image/png;base64," + base64.b64encode(b"PK\x03\x04").decode())
@example("data:image/png;base64,iVBORw0KGgo=\n")
def test_any_text_decodes_to_a_sniffed_image_or_an_image_error(text: str):
    try:
        mime, data = decode_data_uri(text, position=3)
    except ImageError as exc:
        assert "images[3]" in str(exc)
        return
    assert sniff_image(data) == mime and len(data) <= MAX_IMAGE_BYTES


HTTPS_URLS = st.from_regex(r"https://[a-z]{1,8}(\.[a-z]{2,3})?/\S{0,20}", fullmatch=True)
INLINE = IMAGES.map(lambda image: encode_data_uri(*image))


@given(st.lists(st.one_of(ANY_TEXT, HTTPS_URLS, INLINE), max_size=8))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_split_images_answers_references_or_an_image_problem(refs: list[str]):
    try:
        images, count = split_images(refs)
    except ProblemError as exc:
        assert_problem(exc, Code.INVALID_IMAGE, Code.IMAGE_TOO_LARGE)
        return
    assert count == len(refs) == len(images)
    for ref, image in zip(refs, images, strict=True):
        if isinstance(image, InputImage):
            assert ref.startswith("data:") and sniff_image(image.data) == image.mime
        else:
            assert image == ref and ref.startswith("https://") and len(ref) <= 2000


# --- JSON ------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(ANY_TEXT, children, max_size=3)
    ),
    max_leaves=40,
)


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


@given(JSON_VALUES)
def test_json_round_trips_within_the_depth_limit(value: Any):
    raw = json.dumps(value).encode()
    assert loads(raw) == value
    assert within_depth(value, MAX_JSON_DEPTH) == (depth_of(value) <= MAX_JSON_DEPTH)


def values_of(value: Any) -> int:
    """The values in ``value``, itself included (an object's key goes with its value)."""
    children = value.values() if isinstance(value, dict) else value
    if isinstance(value, dict | list):
        return 1 + sum(values_of(child) for child in children)
    return 1


@given(JSON_VALUES, st.booleans())
def test_the_counted_bytes_bound_the_values_before_parsing(value: Any, compact: bool):
    """What ``loads`` counts to refuse a body unparsed: one ',' '[' or '{' per value but
    the first, in any serialization (strings may hold more, never fewer)."""
    raw = json.dumps(value, separators=(",", ":") if compact else None)
    assert values_of(value) <= 1 + sum(raw.count(c) for c in ",[{")


def test_more_values_than_the_limit_are_refused_unparsed():
    for raw in ("[" + "1," * MAX_JSON_VALUES + "1]", "[" * (MAX_JSON_VALUES + 1)):
        with pytest.raises(ProblemError) as refused:
            loads(raw)
        assert refused.value.code == Code.BODY_TOO_LARGE
    assert len(loads("[" + "1," * (MAX_JSON_VALUES - 2) + "1]")) == MAX_JSON_VALUES - 1


@given(st.integers(0, 3000), st.sampled_from(["[", '{"a":']))
def test_nesting_beyond_the_limit_is_invalid_json(depth: int, opener: str):
    closer = "]" if opener == "[" else "}"
    raw = opener * depth + "1" + closer * depth
    try:
        value = loads(raw)
    except ProblemError as exc:
        assert_problem(exc, Code.INVALID_JSON)
        assert depth > MAX_JSON_DEPTH
        return
    assert depth <= MAX_JSON_DEPTH and depth_of(value) == depth


@given(st.binary(max_size=200))
def test_any_bytes_are_json_or_invalid_json(raw: bytes):
    try:
        loads(raw)
    except ProblemError as exc:
        assert_problem(exc, Code.INVALID_JSON)


# --- query parameters: limits and cursors ----------------------------------------------


def request_with(query: dict[str, str], path_params: dict[str, str] | None = None) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": urlencode(query).encode(),
        "headers": [],
        "path_params": path_params or {},
    }
    return Request(scope)


QUERY_TEXT = st.one_of(ANY_TEXT, st.text(DIGITS, max_size=25))


@given(
    st.dictionaries(
        st.sampled_from(["limit", "after", "order", "user", "status", "before", "type", "client"]),
        QUERY_TEXT,
    )
)
@example({"limit": "\u00b2"})
@example({"before": str(2**31)})
@example({"after": "video_\x00"})
@example({"user": "alice\n"})
def test_any_query_is_a_page_request_or_a_400(query: dict[str, str]):
    for model in (VideoListQuery, EventListQuery, CreditsQuery):
        try:
            parsed = params.query(model, request_with(query))
        except ProblemError as exc:
            assert_problem(exc, Code.VALIDATION_ERROR, Code.INVALID_CURSOR)
            continue
        assert 1 <= parsed.limit <= 100
        if "limit" in query:
            assert query["limit"].isascii() and int(query["limit"]) == parsed.limit


@given(st.integers(-(10**20), 10**20))
def test_ascii_limits_read_as_their_number(number: int):
    try:
        parsed = params.query(VideoListQuery, request_with({"limit": str(number)}))
    except ProblemError:
        assert not 1 <= number <= 100
        return
    assert parsed.limit == number


@given(ANY_TEXT)
def test_any_path_id_is_ours_or_a_404(video_id: str):
    from schemas.api import VideoPath

    try:
        parsed = params.path(VideoPath, request_with({}, {"video_id": video_id}), not_found="x")
    except ProblemError as exc:
        assert_problem(exc, Code.NOT_FOUND)
        return
    assert parsed.video_id == video_id and video_id.startswith("video_") and video_id.isascii()


def test_issued_ids_are_valid_path_ids():
    from schemas.api import VideoPath

    for _ in range(50):
        video_id = new_id("video")
        request = request_with({}, {"video_id": video_id})
        assert params.path(VideoPath, request, not_found="x").video_id == video_id


# --- multipart fields ------------------------------------------------------------------

FIELD_NAMES = st.one_of(
    st.sampled_from(
        [
            "prompt",
            "model",
            "seed",
            "metadata",
            "images",
            "images[]",
            "enhance_prompt",
            "user",
            "seconds",
            "size",
            "aspect_ratio",
            "webhook_url",
            "metadata[k]",
            "metadata[]",
        ]
    ),
    st.text(string.ascii_letters + "[]_", min_size=1, max_size=12),
)
FIELD_VALUES = st.one_of(
    ANY_TEXT,
    st.text(DIGITS, max_size=12),
    st.sampled_from(["true", "False", "{}", '{"k": "v"}', "[1]", "8", "1280x720", "16:9"]),
)


def multipart(fields: list[tuple[str, str]], files: list[bytes]) -> tuple[bytes, bytes]:
    boundary = "prop-boundary-1"
    out = b""
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for data in files:
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="input_reference";'
                ' filename="f"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}".encode(), out


def form_request(content_type: bytes, body: bytes, chunk: int) -> Request:
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    messages = [
        {"type": "http.request", "body": p, "more_body": i < len(pieces) - 1}
        for i, p in enumerate(pieces)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/videos",
        "query_string": b"",
        "headers": [(b"content-type", content_type)],
    }
    return Request(scope, receive)


@given(
    st.lists(
        st.tuples(FIELD_NAMES, FIELD_VALUES.filter(lambda v: "prop-boundary" not in v)),
        max_size=10,
    ),
    st.lists(st.one_of(st.binary(max_size=40), IMAGES.map(lambda i: i[1])), max_size=5),
    st.integers(1, 64),
)
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_multipart_form_is_a_create_or_a_400(
    fields: list[tuple[str, str]], files: list[bytes], chunk: int
):
    content_type, body = multipart(fields, files)

    async def run() -> None:
        try:
            data, uploads = await _form(form_request(content_type, body, chunk), 1 << 20)
            parse(VideoCreate, data)
        except ProblemError as exc:
            assert_problem(
                exc,
                Code.VALIDATION_ERROR,
                Code.INVALID_PROMPT,
                Code.INVALID_METADATA,
                Code.INVALID_IMAGE,
                Code.UNKNOWN_MODEL,
                Code.IMAGE_TOO_LARGE,
                Code.BODY_TOO_LARGE,
            )
            return
        assert len(uploads) == len(files)

    asyncio.run(run())


def test_a_multipart_body_over_the_limit_is_413_while_it_streams():
    content_type, body = multipart([("prompt", "x" * 5000)], [])

    async def run() -> None:
        with pytest.raises(ProblemError) as caught:
            await _form(form_request(content_type, body, 100), 1000)
        assert caught.value.code == Code.BODY_TOO_LARGE

    asyncio.run(run())


# --- callback tokens -------------------------------------------------------------------


@given(st.from_regex(r"[A-Za-z0-9_-]{1,100}", fullmatch=True), ANY_TEXT)
def test_a_token_names_its_task_and_only_with_its_secret(task_id: str, secret: str):
    made = token(secret, task_id)
    assert task_of((secret,), made) == task_id
    assume(secret != "other")
    assert task_of(("other",), made) is None


@given(ANY_TEXT)
@example("\u00e9.abc")
@example("x\x00." + "0" * 32)
@example("a" * 5000)
def test_any_text_is_a_task_or_nothing(candidate: str):
    found = task_of(("secret",), candidate)
    assert found is None or token("secret", found) == candidate
