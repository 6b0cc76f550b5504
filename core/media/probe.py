"""Measuring a stored MP4 without downloading it: box chain, container metadata, one frame."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

import av
from av.container import InputContainer
from av.stream import Disposition
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from core.media.boxes import check_boxes
from core.media.facts import InvalidVideo, VideoFacts
from core.media.frames import display_size, frames_at
from core.media.reader import RangeReader, read_object
from core.storage import Storage

MICROSECONDS = 1_000_000  # FFmpeg's AV_TIME_BASE, the unit of container.duration


@dataclass(frozen=True)
class StreamInfo:
    """What the container says about its video, before any frame is decoded.

    ``start`` and ``span`` are in the stream's time base: the first timestamp and the
    length, for placing frames in time.
    """

    duration_ms: int
    fps: float
    codec: str
    has_audio: bool
    start: int
    span: int

    def at(self, fraction: float) -> int:
        """The timestamp ``fraction`` (0..1) of the way through the video."""
        return self.start + int(self.span * fraction)

    def facts(self, frame: VideoFrame, size: int) -> VideoFacts:
        """The facts, given a decoded frame (whose display rotation orients the size)."""
        width, height = display_size(frame)
        return VideoFacts(
            duration_ms=self.duration_ms,
            width=width,
            height=height,
            fps=self.fps,
            codec=self.codec,
            has_audio=self.has_audio,
            size=size,
        )


async def probe(storage: Storage, key: str) -> VideoFacts:
    """Measure the MP4 stored under ``key``, reading only its boxes' headers, ``moov`` and
    the first frame's bytes (``moov`` may sit before or after the media data).

    Raises InvalidVideo if the object is not a whole MP4 with a decodable video frame,
    ObjectNotFound if there is none, and StorageError if reading it fails.
    """
    return await read_object(storage, key, _probe)


def _probe(reader: RangeReader) -> VideoFacts:
    with open_mp4(reader) as (container, stream):
        info = stream_info(container, stream)
        first = next(frames_at(container, stream, [info.start]))
        return info.facts(first, reader.size)


@contextmanager
def open_mp4(reader: RangeReader) -> Iterator[tuple[InputContainer, VideoStream]]:
    """The container and its video stream, after checking the file is a whole MP4.

    Inside the block, FFmpeg's errors become InvalidVideo, unless a storage read failed
    first: that failure is raised instead, as the file may well be fine.
    """
    try:
        check_boxes(reader)
        with av.open(reader, "r", format="mp4", metadata_errors="replace") as container:
            stream = _video_stream(container)
            _check_samples_within(container, reader.size)
            # One thread: frame threads would multiply the decoder's buffers, and a
            # worker runs several jobs at once anyway.
            stream.codec_context.thread_count = 1
            yield container, stream
    except av.FFmpegError as exc:
        reader.raise_failure()
        raise InvalidVideo(f"the MP4 does not decode: {exc.strerror or exc}") from exc
    reader.raise_failure()


def _video_stream(container: InputContainer) -> VideoStream:
    for stream in container.streams.video:
        if not stream.disposition & Disposition.attached_pic:  # not cover art
            return stream
    raise InvalidVideo("the MP4 has no video stream")


def _check_samples_within(container: InputContainer, size: int) -> None:
    """Samples the index places past the end of the file mean the file was cut short."""
    for stream in container.streams:
        end = max((e.pos + e.size for e in stream.index_entries if e.pos >= 0), default=0)
        if end > size:
            raise InvalidVideo(
                f"truncated MP4: {stream.type} samples run to byte {end}, the file has {size}"
            )


def stream_info(container: InputContainer, stream: VideoStream) -> StreamInfo:
    """Duration, frame rate and codec from the container; InvalidVideo where one is missing."""
    time_base = stream.time_base
    if time_base is None or time_base <= 0:
        raise InvalidVideo("the video stream has no time base")
    if stream.duration:
        span = stream.duration
    elif container.duration:
        span = int(Fraction(container.duration, MICROSECONDS) / time_base)
    else:
        span = 0
    duration_ms = round(span * time_base * 1000)
    if duration_ms <= 0:
        raise InvalidVideo("the video has no duration")
    rate = stream.average_rate or stream.guessed_rate
    if not rate and stream.frames:
        rate = Fraction(stream.frames) / (span * time_base)
    if not rate:
        raise InvalidVideo("the video has no frame rate")
    return StreamInfo(
        duration_ms=duration_ms,
        fps=round(float(rate), 3),
        codec=stream.codec_context.name,
        has_audio=bool(container.streams.audio),
        start=stream.start_time or 0,
        span=span,
    )
