"""The top-level ISO BMFF box chain: where an MP4 shows it is whole.

FFmpeg tolerates a file cut short (it plays what is there), so completeness is checked
here: an MP4 is a chain of boxes, each declaring its length, that starts with ``ftyp``
and ends exactly at the end of the file. Reading it costs one header per top-level
box (typically ftyp, free, mdat, moov).
"""

from __future__ import annotations

import struct

from core.media.facts import InvalidVideo
from core.media.reader import RangeReader

HEADER = 8
LARGE_HEADER = 16


def check_boxes(reader: RangeReader) -> list[str]:
    """The top-level box types in order; InvalidVideo unless the chain is a whole MP4."""
    if reader.size == 0:
        raise InvalidVideo("the file is empty")
    types: list[str] = []
    offset = 0
    while offset < reader.size:
        box_type, length, header_length = _header_at(reader, offset)
        if not types and box_type != "ftyp":
            raise InvalidVideo(f"not an MP4 file: it starts with {box_type!r}, not an ftyp box")
        remaining = reader.size - offset
        if length < header_length:
            raise InvalidVideo(f"malformed MP4: the {box_type!r} box at byte {offset} is too short")
        if length > remaining:
            raise InvalidVideo(
                f"truncated MP4: the {box_type!r} box at byte {offset} needs {length} bytes,"
                f" the file ends after {remaining}"
            )
        types.append(box_type)
        offset += length
    if "moov" not in types:
        raise InvalidVideo("truncated or incomplete MP4: no moov box")
    return types


def _header_at(reader: RangeReader, offset: int) -> tuple[str, int, int]:
    """``(type, length, header length)`` of the box at ``offset``; length 0 means "to the end"."""
    remaining = reader.size - offset
    header = reader.read_at(offset, min(LARGE_HEADER, remaining))
    if len(header) < HEADER:
        raise InvalidVideo(f"truncated MP4: {remaining} stray bytes at byte {offset}")
    length, raw_type = struct.unpack(">I4s", header[:HEADER])
    box_type = raw_type.decode("latin-1")
    if length == 0:  # the last box, running to the end of the file
        return box_type, remaining, HEADER
    if length == 1:  # a 64-bit length follows the type
        if len(header) < LARGE_HEADER:
            raise InvalidVideo(f"truncated MP4: the {box_type!r} box header at byte {offset}")
        (length,) = struct.unpack(">Q", header[HEADER:LARGE_HEADER])
        return box_type, length, LARGE_HEADER
    return box_type, length, HEADER
