"""What an uploaded image must survive (``core.images.inspect_image``): each way of not
being one complete image within bounds is an ``ImageError``, never another exception."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.images import MAX_IMAGE_BYTES, MAX_PIXELS, ImageError, ImageFacts, inspect_image
from tests.integration.images import (
    animated,
    bomb_png,
    interlaced_png,
    picture,
    rows_missing_png,
)

GOOD = {
    "image/png": picture("PNG", 96, 64),
    "image/jpeg": picture("JPEG", 96, 64),
    "image/webp": picture("WEBP", 96, 64),
}


@pytest.mark.parametrize("mime", list(GOOD))
def test_a_real_image_gives_its_type_and_size(mime: str) -> None:
    assert inspect_image(GOOD[mime]) == ImageFacts(mime, 96, 64)


def _refused(data: bytes, *fragments: str) -> ImageError:
    with pytest.raises(ImageError) as caught:
        inspect_image(data)
    for fragment in fragments:
        assert fragment in str(caught.value), caught.value
    return caught.value


def test_truncated_images_are_refused() -> None:
    for data in GOOD.values():
        _refused(data[: len(data) * 2 // 3], "decodable")


@pytest.mark.parametrize(
    ("width", "height", "rows"), [(8192, 4000, 1), (96, 64, 63), (640, 480, 0)]
)
def test_a_png_whose_data_ends_cleanly_before_its_last_row_is_refused(
    width: int, height: int, rows: int
) -> None:
    # A tester's 588-byte upload passed as 8192x4000: Pillow fills missing rows with black.
    _refused(rows_missing_png(width, height, rows), "decodable PNG")
    assert inspect_image(rows_missing_png(width, height, height)) == ImageFacts(
        "image/png", width, height
    )


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"])
def test_complete_pngs_of_every_colour_type_pass(mode: str) -> None:
    # Odd sizes: the last byte of a packed 1-bit row is partial.
    assert inspect_image(picture("PNG", 67, 65, mode=mode)) == ImageFacts("image/png", 67, 65)


@pytest.mark.parametrize(("width", "height"), [(67, 65), (64, 64), (1001, 70)])
def test_interlaced_pngs_count_their_rows_per_adam7_pass(width: int, height: int) -> None:
    data = interlaced_png(width, height)
    with Image.open(io.BytesIO(data)) as decoded:  # the helper's PNG is what it claims
        assert decoded.info.get("interlace") == 1
        assert decoded.getpixel((width - 1, height - 1)) == ((width - 1) ^ (height - 1)) & 0xFF
    assert inspect_image(data) == ImageFacts("image/png", width, height)
    _refused(data[:33] + _shortened_idat(data[33:]), "decodable PNG")


def _shortened_idat(chunks: bytes) -> bytes:
    """The IDAT chunk (first in ``chunks``) re-deflated with its last 10 bytes gone."""
    (length,) = struct.unpack(">I", chunks[:4])
    raw = zlib.decompress(chunks[8 : 8 + length])[:-10]
    body = zlib.compress(raw)
    crc = struct.pack(">I", zlib.crc32(b"IDAT" + body))
    return struct.pack(">I", len(body)) + b"IDAT" + body + crc + chunks[12 + length :]


def test_a_png_header_on_other_content_is_refused() -> None:
    _refused(b"\x89PNG\r\n\x1a\n" + b"garbage" * 100, "decodable")
    # The bytes of a JPEG behind a PNG signature: no other decoder is tried.
    _refused(b"\x89PNG\r\n\x1a\n" + GOOD["image/jpeg"], "decodable")


def test_other_formats_and_nothing_are_refused() -> None:
    _refused(picture("GIF"), "not a PNG, JPEG or WebP")
    _refused(b"", "empty")
    _refused(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a PNG, JPEG or WebP")


def test_bounds() -> None:
    _refused(picture("PNG", 63, 200), "63x200", "64 to 8192")
    _refused(picture("PNG", 64, 8193), "64x8193")
    assert inspect_image(picture("PNG", 64, 64)).width == 64
    too_large = _refused(b"\x89PNG" + b"\x00" * MAX_IMAGE_BYTES, "10 MB")
    assert too_large.too_large


def test_decompression_bombs_are_refused_before_decoding() -> None:
    # Within Pillow's own limit but past ours (7000² = 49 MP).
    _refused(bomb_png(7000), f"more than {MAX_PIXELS} pixels")
    # Past Pillow's DecompressionBombError threshold (20000² = 400 MP).
    _refused(bomb_png(20000), f"more than {MAX_PIXELS} pixels")


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animated_images_are_refused(fmt: str) -> None:
    _refused(animated(fmt), "animated")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mime=st.sampled_from(list(GOOD)),
    edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.floats(0.05, 1),
)
def test_corrupted_images_are_decoded_or_refused_never_crash(
    mime: str, edits: list[tuple[float, int]], cut: float
) -> None:
    data = bytearray(GOOD[mime])
    for where, value in edits:
        data[int(where * (len(data) - 1))] = value
    data = data[: max(1, int(len(data) * cut))]
    try:
        facts = inspect_image(bytes(data))
    except ImageError:
        return
    assert facts.mime in GOOD
