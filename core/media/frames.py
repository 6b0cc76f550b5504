"""Decoding only the frames wanted: one forward sweep, seeking only where it saves reading.

Each wanted frame is the first one shown at or after its timestamp. Reaching it means
decoding from the keyframe before it; when that keyframe is behind the frame already
decoded, going on is cheaper than seeking back, so a video with few keyframes is read
at most about once, and one with many is read only around the wanted frames.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from core.media.facts import InvalidVideo

# PIL rotates counter-clockwise, as FFmpeg's display rotation is counted.
_ROTATIONS = {
    90: Image.Transpose.ROTATE_90,
    -90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    -180: Image.Transpose.ROTATE_180,
}


def frames_at(
    container: InputContainer, stream: VideoStream, timestamps: Iterable[int]
) -> Iterator[VideoFrame]:
    """For each ascending timestamp (``stream.time_base`` units), the frame shown then.

    Past the last frame, the last frame. Use each frame before asking for the next:
    at most one decoded frame is kept. InvalidVideo if the stream decodes no frame.
    """
    keyframes = sorted(entry.timestamp for entry in stream.index_entries if entry.is_keyframe)
    decoded: Iterator[VideoFrame] | None = None
    last: VideoFrame | None = None
    for target in timestamps:
        if last is not None and (last.pts is None or last.pts >= target):
            yield last
            continue
        if decoded is None or _keyframe_between(keyframes, last, target):
            container.seek(target, backward=True, stream=stream)
            decoded = container.decode(stream)
        for frame in decoded:
            last = frame
            if frame.pts is None or frame.pts >= target:
                break
        if last is None:
            raise InvalidVideo("the video stream has no decodable frame")
        yield last


def _keyframe_between(keyframes: list[int], last: VideoFrame | None, target: int) -> bool:
    """Whether seeking to ``target`` skips data, rather than re-reading what was decoded.

    Index timestamps are decode times, a frame or two off presentation times with
    B-frames: good enough to choose; the decoding itself stays exact.
    """
    if not keyframes or last is None or last.pts is None:
        return True
    return bisect.bisect_right(keyframes, target) > bisect.bisect_right(keyframes, last.pts)


def display_size(frame: VideoFrame) -> tuple[int, int]:
    """``(width, height)`` as shown: a quarter-turn display rotation swaps them."""
    if frame.rotation in (90, -90):
        return frame.height, frame.width
    return frame.width, frame.height


def display_image(frame: VideoFrame, width: int) -> Image.Image:
    """The frame as shown, scaled to ``width`` pixels wide (keeping its aspect ratio).

    Scaled while still YUV, so no full-size RGB copy is ever made.
    """
    shown_width, shown_height = display_size(frame)
    height = max(1, round(shown_height * width / shown_width))
    quarter_turn = frame.rotation in (90, -90)
    coded = (height, width) if quarter_turn else (width, height)
    small = frame.reformat(width=coded[0], height=coded[1], format="rgb24", interpolation="AREA")
    plane = small.planes[0]
    image = Image.frombytes("RGB", coded, bytes(plane), "raw", "RGB", plane.line_size)
    rotation = _ROTATIONS.get(frame.rotation)
    return image.transpose(rotation) if rotation is not None else image
