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


def picture(
    fmt: str, width: int = 96, height: int = 64, mode: str = "RGB", **save: object
) -> bytes:
    """A real ``fmt`` image (``PNG``, ``JPEG``, ``WEBP``, ``GIF``) made by Pillow, in
    ``mode`` (blue for RGB, black otherwise)."""
    from PIL import Image

    out = io.BytesIO()
    colour = (30, 120, 200) if mode == "RGB" else 0
    Image.new(mode, (width, height), colour).save(out, fmt, **save)
    return out.getvalue()


def interlaced_png(width: int, height: int) -> bytes:
    """An 8-bit grey Adam7-interlaced PNG (Pillow writes none), pixel (x, y) = x ^ y."""
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2))
    raw = b"".join(
        b"\x00" + bytes((x ^ y) & 0xFF for x in range(x0, width, dx))
        for x0, y0, dx, dy in (*passes, (0, 1, 1, 2))
        if x0 < width
        for y in range(y0, height, dy)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def animated(fmt: str, frames: int = 3, side: int = 80) -> bytes:
    """An animated ``fmt`` image (``PNG`` as APNG, ``WEBP``)."""
    from PIL import Image

    images = [Image.new("RGB", (side, side), (40 * i, 0, 0)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=images[1:], duration=100)
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def rows_missing_png(width: int, height: int, rows: int) -> bytes:
    """An 8-bit RGB PNG header of ``width`` x ``height`` whose zlib stream ends *cleanly*
    after ``rows`` rows: Pillow decodes it without complaint (the rest comes out black)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress((b"\x00" + b"\x7f" * 3 * width) * rows, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", body)
        + _png_chunk(b"IEND", b"")
    )


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
