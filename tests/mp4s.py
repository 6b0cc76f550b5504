"""Real MP4 files made with PyAV for the media tests, in both box layouts.

PyAV writes ``moov`` after the media data (as many encoders do); ``faststart`` remuxes
a file with ``moov`` first. Frames are flat grey with a brightness rising from frame to
frame (``brightness``), so a test can tell which frame an image shows.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av

AUDIO_RATE = 48_000
AUDIO_SAMPLES = 1024


def luma(index: int, frames: int) -> int:
    """The Y value (32..235: never black) of frame ``index`` of ``frames``."""
    return 32 + (203 * index) // max(frames - 1, 1)


def brightness(index: int, frames: int) -> float:
    """Frame ``index``'s grey as full-range RGB (0..255), what a decoded image shows."""
    return (luma(index, frames) - 16) * 255 / 219


def write_mp4(
    path: Path,
    *,
    width: int = 320,
    height: int = 180,
    seconds: float = 2.0,
    fps: int = 24,
    audio: bool = False,
    rotation: int | None = None,
    gop: int | None = None,
    noise: bool = False,
    min_bytes: int = 0,
) -> Path:
    """An H.264 MP4 with ``moov`` at the end. ``noise`` fills frames with random pixels
    (incompressible: big files fast); ``min_bytes`` adds frames until the media reaches it.
    """
    frames = max(1, round(seconds * fps))
    options = {"preset": "ultrafast", "qp": "0"} if noise else {}
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps, options=options)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if gop is not None:
            video.codec_context.gop_size = gop
        if rotation is not None:
            video.set_display_rotation(rotation)
        silence = _Silence(container) if audio else None
        written = index = 0
        while index < frames or written < min_bytes:
            frame = _frame(width, height, luma(min(index, frames - 1), frames), noise)
            frame.pts, frame.time_base = index, Fraction(1, fps)
            for packet in video.encode(frame):
                written += packet.size
                container.mux(packet)
            index += 1
            if silence is not None:
                silence.until(index / fps)
        for packet in video.encode(None):
            container.mux(packet)
        if silence is not None:
            silence.close()
    return path


def _frame(width: int, height: int, y: int, noise: bool) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    luma_plane, *chroma = frame.planes
    size = luma_plane.buffer_size
    luma_plane.update(os.urandom(size) if noise else bytes((y,)) * size)
    for plane in chroma:
        plane.update(b"\x80" * plane.buffer_size)
    return frame


class _Silence:
    """A stereo AAC track of silence, encoded as far as the video has got."""

    def __init__(self, container: av.container.OutputContainer) -> None:
        self._container = container
        self._stream = container.add_stream("aac", rate=AUDIO_RATE)
        self._next = 0

    def until(self, seconds: float) -> None:
        while self._next * AUDIO_SAMPLES < seconds * AUDIO_RATE:
            frame = av.AudioFrame(format="fltp", layout="stereo", samples=AUDIO_SAMPLES)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate = AUDIO_RATE
            frame.pts, frame.time_base = self._next * AUDIO_SAMPLES, Fraction(1, AUDIO_RATE)
            self._mux(frame)
            self._next += 1

    def close(self) -> None:
        self._mux(None)

    def _mux(self, frame: av.AudioFrame | None) -> None:
        for packet in self._stream.encode(frame):
            self._container.mux(packet)


def write_audio_only(path: Path, seconds: float = 1.0) -> Path:
    with av.open(str(path), "w", format="mp4") as container:
        silence = _Silence(container)
        silence.until(seconds)
        silence.close()
    return path


def faststart(source: Path, target: Path) -> Path:
    """``source`` remuxed (no re-encoding) with ``moov`` before the media data."""
    with (
        av.open(str(source)) as inp,
        av.open(str(target), "w", format="mp4", options={"movflags": "faststart"}) as out,
    ):
        streams = {stream.index: out.add_stream_from_template(stream) for stream in inp.streams}
        for packet in inp.demux():
            if packet.dts is None:  # the demuxer's flush packets
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return target


def top_level_boxes(data: bytes) -> list[tuple[int, int, bytes]]:
    """``(offset, size, type)`` of each top-level box."""
    offset, boxes = 0, []
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        size = size or len(data) - offset
        boxes.append((offset, size, data[offset + 4 : offset + 8]))
        offset += size
    return boxes


def moov_first(data: bytes) -> bool:
    """Whether ``moov`` comes before ``mdat`` among the top-level boxes."""
    order = [box_type for _, _, box_type in top_level_boxes(data)]
    return order.index(b"moov") < order.index(b"mdat")
