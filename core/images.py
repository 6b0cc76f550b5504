"""Pure helpers for input images: data-URI parsing, magic-byte sniffing, and the full
decode an upload must survive (``inspect_image``)."""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct
import zlib
from dataclasses import dataclass

from PIL import Image

MAX_IMAGE_BYTES = 10 * 1024 * 1024
_DATA_URI = re.compile(r"^data:image/(png|jpeg|jpg|webp);base64,(.*)$", re.DOTALL)
MIME_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
# Bounds of an uploaded image, per side and in all. The pixel cap is checked from the
# header before anything is decoded, so a decompression bomb (a few KB that inflate to
# gigabytes) is refused without allocating it; 40 MP decode to at most ~160 MB.
MIN_SIDE = 64
MAX_SIDE = 8192
MAX_PIXELS = 40_000_000
# What Pillow's decoders raise on hostile bytes (UnidentifiedImageError and "truncated"
# are OSError, "broken PNG" a SyntaxError, short reads struct.error or EOFError …): each
# means "not a decodable image" (tests/unit/test_images.py mutates real images to hold it).
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    TypeError,
    EOFError,
    IndexError,
    KeyError,
    ZeroDivisionError,
    struct.error,
    zlib.error,
)
_PIL_FORMAT = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


class ImageError(ValueError):
    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def sniff_image(data: bytes) -> str | None:
    """The MIME type the bytes really are (PNG, JPEG, WebP), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def decode_data_uri(uri: str, *, position: int) -> tuple[str, bytes]:
    """(mime, bytes) of a ``data:image/…;base64,`` URI whose content really is that image."""
    match = _DATA_URI.match(uri)
    if not match:
        raise ImageError(
            f"images[{position}] must be an https:// URL or a data:image/(png|jpeg|webp);base64 URI"
        )
    payload = match.group(2)
    # base64 inflates by 4/3: refuse before decoding anything enormous.
    if len(payload) > (MAX_IMAGE_BYTES * 4) // 3 + 4:
        raise ImageError(f"images[{position}] is larger than 10 MB", too_large=True)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(f"images[{position}] is not valid base64") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(f"images[{position}] is larger than 10 MB", too_large=True)
    mime = sniff_image(data)
    if mime is None:
        raise ImageError(f"images[{position}] is not a PNG, JPEG or WebP image")
    return mime, data


def encode_data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@dataclass(frozen=True)
class ImageFacts:
    """What a fully decoded image is: its real MIME type and its size in pixels."""

    mime: str
    width: int
    height: int


def inspect_image(data: bytes, *, what: str = "The file") -> ImageFacts:
    """The facts of ``data`` if it is one PNG, JPEG or WebP image (by its magic bytes) of
    at most ``MAX_IMAGE_BYTES``, ``MIN_SIDE``-``MAX_SIDE`` pixels a side and at most
    ``MAX_PIXELS`` in all, not animated, and decodable to its last pixel. Raises
    ``ImageError`` (``too_large`` for the byte limit) naming ``what`` otherwise.

    Blocking: it decodes the whole image (tens of ms to a second), so run it in a thread.
    """
    if not data:
        raise ImageError(f"{what} is empty.")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(f"{what} is larger than 10 MB.", too_large=True)
    mime = sniff_image(data)
    if mime is None:
        raise ImageError(f"{what} is not a PNG, JPEG or WebP image.")
    try:
        # Only the decoder its magic bytes name: a PNG header on other content is not
        # given to another decoder that might accept it.
        with Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[mime]]) as image:
            width, height = image.size
            _check_bounds(width, height, what)
            if mime != "image/jpeg" and getattr(image, "is_animated", False):
                raise ImageError(f"{what} is animated; upload a still image.")
            image.load()
        if mime == "image/png":
            _check_png_rows(data, what)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"{what} has more than {MAX_PIXELS} pixels.") from None
    except _DECODE_ERRORS:
        name = _PIL_FORMAT[mime].replace("WEBP", "WebP")
        raise ImageError(f"{what} is not a complete, decodable {name} image.") from None
    return ImageFacts(mime, width, height)


# PNG colour type → samples per pixel (PNG spec, 11.2.2 IHDR).
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 passes: (first column, first row, column step, row step) (PNG spec, 8.2).
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def _check_png_rows(data: bytes, what: str) -> None:
    """Raise ImageError unless the PNG's image data inflates to every row its header
    declares. Pillow accepts a zlib stream that *ends cleanly* before the last row and
    leaves the missing rows black (a 588-byte file passed as 8192x4000), so the rows are
    counted here: filter byte + packed samples per row, per Adam7 pass if interlaced."""
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    bits = depth * _PNG_SAMPLES.get(colour, 4)
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    expected = 0
    for x0, y0, dx, dy in passes:
        columns, rows = -(-max(width - x0, 0) // dx), -(-max(height - y0, 0) // dy)
        if columns and rows:
            expected += rows * (1 + -(-columns * bits // 8))
    inflate = zlib.decompressobj()
    inflated, position = 0, 8
    while position + 8 <= len(data) and inflated < expected:
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = memoryview(data)[position + 8 : position + 8 + length]
        position += 12 + length
        while kind == b"IDAT" and body and inflated < expected:
            inflated += len(inflate.decompress(body, 1 << 20))
            body = memoryview(inflate.unconsumed_tail)
    if inflated < expected:
        raise ImageError(f"{what} is not a complete, decodable PNG image (rows missing).")


def _check_bounds(width: int, height: int, what: str) -> None:
    if width * height > MAX_PIXELS:
        raise ImageError(f"{what} has more than {MAX_PIXELS} pixels ({width}x{height}).")
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise ImageError(
            f"{what} is {width}x{height}; each side must be {MIN_SIDE} to {MAX_SIDE} pixels."
        )
