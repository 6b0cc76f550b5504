"""What the store job calls: measure the stored video and store its variants beside it."""

from __future__ import annotations

from dataclasses import dataclass

from core.media.facts import VideoFacts
from core.media.frames import frames_at
from core.media.probe import open_mp4, stream_info
from core.media.reader import RangeReader, read_object
from core.media.variants import EncodedImage, Spritesheet, thumbnail
from core.storage import Storage, StoredObject
from core.storage.keys import spritesheet_key, thumbnail_key, video_key

# The first frame: converting it while the decoder holds a single picture keeps the
# peak down (a frame 10% in, with the decoder full, added ~12 MiB at 1080p).
THUMBNAIL_AT = 0.0


@dataclass(frozen=True)
class MediaFacts:
    """The measured video, its stored variants, and how many bytes were read to make them."""

    video: VideoFacts
    thumbnail: StoredObject
    spritesheet: StoredObject
    bytes_read: int


@dataclass(frozen=True)
class _Examined:
    video: VideoFacts
    thumbnail: EncodedImage
    spritesheet: EncodedImage
    bytes_read: int


async def inspect_and_derive(storage: Storage, task_id: str) -> MediaFacts:
    """Probe the task's stored video, then store its thumbnail and spritesheet beside it.

    The frames come from ranged reads of the stored object (never the whole file in
    memory) decoded in a thread. Raises InvalidVideo if the video is not a whole MP4
    with decodable frames (nothing is stored then), ObjectNotFound if it is missing,
    and StorageError if reading or storing fails. Re-running overwrites the variants.
    """
    examined = await read_object(storage, video_key(task_id), _examine)
    thumb = examined.thumbnail
    sheet = examined.spritesheet
    return MediaFacts(
        video=examined.video,
        thumbnail=await storage.put_bytes(thumbnail_key(task_id), thumb.data, thumb.content_type),
        spritesheet=await storage.put_bytes(
            spritesheet_key(task_id), sheet.data, sheet.content_type
        ),
        bytes_read=examined.bytes_read,
    )


def _examine(reader: RangeReader) -> _Examined:
    sheet = Spritesheet()
    thumb: EncodedImage | None = None
    facts: VideoFacts | None = None
    with open_mp4(reader) as (container, stream):
        info = stream_info(container, stream)
        # Tile i shows the middle of the i-th of `tiles` equal slices of the video.
        wanted = [((i + 0.5) / sheet.tiles, i) for i in range(sheet.tiles)]
        wanted = sorted([*wanted, (THUMBNAIL_AT, -1)])
        frames = frames_at(container, stream, [info.at(fraction) for fraction, _ in wanted])
        for (_, tile), frame in zip(wanted, frames, strict=True):
            facts = facts or info.facts(frame, reader.size)
            if tile < 0:
                thumb = thumbnail(frame)
            else:
                sheet.add(frame)
    assert thumb is not None and facts is not None  # THUMBNAIL_AT is among `wanted`
    return _Examined(facts, thumb, sheet.encode(), reader.bytes_read)
