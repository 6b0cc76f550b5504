"""Stream the rendered MP4, padded to a requested size with a trailing ``free`` box.

A ``free`` box is a size-prefixed MP4 box that players skip, so the padded file is
still a valid MP4. The padding is streamed as zeros and never built in memory, so a
200 MB file costs one chunk of memory per download. A gzip-encoded file
(``[sim:length=gzip]``) is compressed whole first, to declare its encoded length: the
rendered video plus a thousandth of the padding.
"""

import struct
import zlib
from collections.abc import AsyncIterator, Iterator

CHUNK_SIZE = 64 * 1024
# The largest file served (``GOOGLE_VIDEO_SIM_MAX_VIDEO_BYTES``): ``[sim:size]`` is in the
# client's prompt, and a worker stores what it is served.
DEFAULT_MAX_VIDEO_BYTES = 50 * 1024 * 1024
_SMALL_HEADER = 8  # 32-bit size + type


def padding_for(video_size: int, target_size: int | None) -> int:
    """Bytes of ``free`` box to append so the file is ``target_size`` long (0 if impossible)."""
    if target_size is None:
        return 0
    padding = target_size - video_size
    return padding if padding >= _SMALL_HEADER else 0


def free_box_header(padding: int) -> bytes:
    """The header of a ``free`` box whose total size (header included) is ``padding``."""
    if padding < _SMALL_HEADER:
        raise ValueError("a free box is at least 8 bytes")
    if padding <= 0xFFFFFFFF:
        return struct.pack(">I4s", padding, b"free")
    return struct.pack(">I4sQ", 1, b"free", padding)


async def stream_mp4(video: bytes, padding: int) -> AsyncIterator[bytes]:
    """Yield ``video`` then a ``padding``-byte free box, in chunks of at most CHUNK_SIZE."""
    for chunk in mp4_chunks(video, padding):
        yield chunk


def gzipped_mp4(video: bytes, padding: int) -> bytes:
    """The gzip encoding of what ``stream_mp4`` yields (CPU-bound: run it off the loop)."""
    encoder = zlib.compressobj(wbits=31)  # 16 + 15: a gzip header and trailer
    parts = [encoder.compress(chunk) for chunk in mp4_chunks(video, padding)]
    parts.append(encoder.flush())
    return b"".join(parts)


def mp4_chunks(video: bytes, padding: int) -> Iterator[bytes]:
    """``video`` then a ``padding``-byte free box, in chunks of at most CHUNK_SIZE."""
    for start in range(0, len(video), CHUNK_SIZE):
        yield video[start : start + CHUNK_SIZE]
    if padding == 0:
        return
    header = free_box_header(padding)
    yield header
    remaining = padding - len(header)
    zeros = bytes(CHUNK_SIZE)
    while remaining > 0:
        size = min(remaining, CHUNK_SIZE)
        yield zeros if size == CHUNK_SIZE else zeros[:size]
        remaining -= size
