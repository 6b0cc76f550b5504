"""The OpenAI ``variant``s of a video's content: a thumbnail and a spritesheet.

Like the OpenAI Videos API, the thumbnail is WebP and the spritesheet is JPEG. Frames
arrive one at a time and are scaled down at once, so memory holds small images only;
encoding waits until the decoder is closed, so the two never add up.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from av.video.frame import VideoFrame
from PIL import Image

from core.media.frames import display_image, display_size

THUMBNAIL_MAX_SIDE = 1280
THUMBNAIL_QUALITY = 80
SPRITE_COLUMNS = 4
SPRITE_ROWS = 4
SPRITE_TILE_WIDTH = 160
SPRITE_QUALITY = 80


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    content_type: str


def thumbnail(frame: VideoFrame) -> EncodedImage:
    """The frame as shown, its longer side at most THUMBNAIL_MAX_SIDE pixels, as WebP."""
    width, height = display_size(frame)
    scale = min(1.0, THUMBNAIL_MAX_SIDE / max(width, height))
    image = display_image(frame, max(1, round(width * scale)))
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=THUMBNAIL_QUALITY)
    return EncodedImage(buffer.getvalue(), "image/webp")


class Spritesheet:
    """A grid of tiles SPRITE_TILE_WIDTH wide, filled left to right, top to bottom.

    The tile height follows the first frame's aspect ratio; later frames are fitted to it.
    """

    tiles = SPRITE_COLUMNS * SPRITE_ROWS

    def __init__(self) -> None:
        self._sheet: Image.Image | None = None
        self._tile_height = 0
        self._count = 0

    def add(self, frame: VideoFrame) -> None:
        if self._count >= self.tiles:
            raise ValueError(f"the spritesheet holds {self.tiles} tiles")
        tile = display_image(frame, SPRITE_TILE_WIDTH)
        if self._sheet is None:
            self._tile_height = tile.height
            size = (SPRITE_TILE_WIDTH * SPRITE_COLUMNS, self._tile_height * SPRITE_ROWS)
            self._sheet = Image.new("RGB", size)
        if tile.height != self._tile_height:
            tile = tile.resize((SPRITE_TILE_WIDTH, self._tile_height))
        row, column = divmod(self._count, SPRITE_COLUMNS)
        self._sheet.paste(tile, (column * SPRITE_TILE_WIDTH, row * self._tile_height))
        self._count += 1

    def encode(self) -> EncodedImage:
        """The grid as JPEG; tiles never added stay black."""
        if self._sheet is None:
            raise ValueError("no frame was added to the spritesheet")
        buffer = io.BytesIO()
        self._sheet.save(buffer, format="JPEG", quality=SPRITE_QUALITY)
        return EncodedImage(buffer.getvalue(), "image/jpeg")
