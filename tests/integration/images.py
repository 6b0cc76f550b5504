"""Tiny real images (and impostors) for request bodies."""

from __future__ import annotations

import base64
import io
import struct
import zlib


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


PNG = png_bytes()
PNG_URI = data_uri(PNG)
ZIP_URI = data_uri(b"PK\x03\x04" + b"\x00" * 64)


def picture(fmt: str, width: int = 96, height: int = 64, **save: object) -> bytes:
    """A real ``fmt`` image (``PNG``, ``JPEG``, ``WEBP``, ``GIF``) made by Pillow."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, fmt, **save)
    return out.getvalue()


def animated(fmt: str, frames: int = 3, side: int = 80) -> bytes:
    """An animated ``fmt`` image (``PNG`` as APNG, ``WEBP``)."""
    from PIL import Image

    images = [Image.new("RGB", (side, side), (40 * i, 0, 0)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=images[1:], duration=100)
    return out.getvalue()


def bomb_png(side: int) -> bytes:
    """A valid 1-bit grayscale PNG of ``side`` x ``side`` pixels, all black: a few KB that
    inflate to ``side``² pixels (a decompression bomb), made without holding them."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    deflate = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    body = b"".join(deflate.compress(row * 256) for _ in range(side // 256))
    body += deflate.compress(row * (side % 256)) + deflate.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
