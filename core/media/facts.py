"""What probing a stored video measures, and the one error for a video that is not one."""

from __future__ import annotations

from dataclasses import dataclass


class InvalidVideo(Exception):
    """The stored bytes are not a playable MP4 with video frames: re-download or give up.

    Only the file's content raises this; a storage failure while reading it stays a
    StorageError (retry the read, not the download).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VideoFacts:
    """A stored MP4 as measured: its first video stream, in display orientation.

    ``width`` and ``height`` are pixels as shown (a 90° display rotation swaps the coded
    ones); ``fps`` is the average frame rate; ``codec`` is FFmpeg's decoder name ("h264",
    "hevc", "av1"); ``size`` is the object's length in bytes.
    """

    duration_ms: int
    width: int
    height: int
    fps: float
    codec: str
    has_audio: bool
    size: int
