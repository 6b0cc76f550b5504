"""Render the small, real, playable MP4 every finished task serves."""

import io
import math
from fractions import Fraction

import av

FPS = 24
BAR_WIDTH = 16


def render_mp4(seconds: float = 2, width: int = 320, height: int = 180) -> bytes:
    """H.264 (yuv420p) MP4 of a moving colour gradient with a sweeping white bar."""
    if width % 2 or height % 2 or width < BAR_WIDTH or height <= 0:
        raise ValueError("width and height must be even, width at least 16")
    frames = max(1, round(seconds * FPS))
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        for index in range(frames):
            frame = _frame(index, frames, width, height)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def _frame(index: int, frames: int, width: int, height: int) -> "av.VideoFrame":
    frame = av.VideoFrame(width, height, "rgb24")
    plane = frame.planes[0]
    pixels = bytearray(plane.buffer_size)
    row = _row_template(index, frames, width)
    bar = (index * (width - BAR_WIDTH)) // max(frames - 1, 1)
    white = b"\xff" * (BAR_WIDTH * 3)
    for y in range(height):
        row[1::3] = bytes((y * 255 // height,)) * width
        row[bar * 3 : (bar + BAR_WIDTH) * 3] = white
        start = y * plane.line_size
        pixels[start : start + width * 3] = row
    plane.update(bytes(pixels))
    frame.pts = index
    frame.time_base = Fraction(1, FPS)
    return frame.reformat(format="yuv420p")


def _row_template(index: int, frames: int, width: int) -> bytearray:
    """One rgb24 row without its green: red slides with time, blue pulses."""
    shift = index * 8
    row = bytearray(width * 3)
    row[0::3] = bytes((x * 256 // width + shift) & 255 for x in range(width))
    blue = int(128 + 127 * math.sin(2 * math.pi * index / frames))
    row[2::3] = bytes((blue,)) * width
    return row
