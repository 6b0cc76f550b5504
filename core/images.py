"""Pure helpers for input images: data-URI parsing and magic-byte sniffing."""

from __future__ import annotations

import base64
import binascii
import re

MAX_IMAGE_BYTES = 10 * 1024 * 1024
_DATA_URI = re.compile(r"^data:image/(png|jpeg|jpg|webp);base64,(.*)$", re.DOTALL)
MIME_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


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
