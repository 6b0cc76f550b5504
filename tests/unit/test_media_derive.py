from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from core.media import InvalidVideo, inspect_and_derive
from core.media.derive import THUMBNAIL_AT
from core.storage import LocalStorage
from core.storage.keys import spritesheet_key, task_prefixes, thumbnail_key, video_key
from tests.mp4s import brightness, faststart, write_mp4

TASK = "task_1"
COLUMNS = ROWS = 4
TILE_WIDTH = 160


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects")


async def _store(storage: LocalStorage, path: Path) -> bytes:
    data = path.read_bytes()
    await storage.put_bytes(video_key(TASK), data, "video/mp4")
    return data


async def _image(storage: LocalStorage, key: str) -> Image.Image:
    size = await storage.stat(key)
    assert size is not None, key
    image = Image.open(io.BytesIO(await storage.read_range(key, 0, size)))
    image.load()
    return image


def _tiles(sheet: Image.Image) -> list[Image.Image]:
    width, height = sheet.width // COLUMNS, sheet.height // ROWS
    return [
        sheet.crop((column * width, row * height, (column + 1) * width, (row + 1) * height))
        for row in range(ROWS)
        for column in range(COLUMNS)
    ]


def _mean(image: Image.Image) -> float:
    return float(ImageStat.Stat(image.convert("L")).mean[0])


@pytest.mark.parametrize("layout", ["moov-last", "faststart"])
async def test_variants_are_stored_beside_the_video_as_webp_and_jpeg(
    storage: LocalStorage, tmp_path: Path, layout: str
) -> None:
    path = write_mp4(tmp_path / "video.mp4", audio=True)
    if layout == "faststart":
        path = faststart(path, tmp_path / "faststart.mp4")
    data = await _store(storage, path)

    media = await inspect_and_derive(storage, TASK)

    assert media.video.size == len(data)
    assert (media.thumbnail.key, media.thumbnail.content_type) == (
        thumbnail_key(TASK),
        "image/webp",
    )
    assert (media.spritesheet.key, media.spritesheet.content_type) == (
        spritesheet_key(TASK),
        "image/jpeg",
    )
    assert all(
        key.startswith(f"videos/{TASK}/") for key in (thumbnail_key(TASK), spritesheet_key(TASK))
    )
    assert (await _image(storage, thumbnail_key(TASK))).format == "WEBP"
    assert (await _image(storage, spritesheet_key(TASK))).format == "JPEG"
    assert await storage.stat(thumbnail_key(TASK)) == media.thumbnail.size


@pytest.mark.parametrize(
    ("width", "height", "rotation", "shown"),
    [
        (320, 180, None, (320, 180)),
        (180, 320, None, (180, 320)),
        (320, 180, 90, (180, 320)),
        (320, 240, -90, (240, 320)),
    ],
    ids=["landscape", "portrait", "rotated-90", "rotated-minus-90"],
)
async def test_variants_keep_the_video_aspect_ratio(
    storage: LocalStorage,
    tmp_path: Path,
    width: int,
    height: int,
    rotation: int | None,
    shown: tuple[int, int],
) -> None:
    await _store(
        storage, write_mp4(tmp_path / "v.mp4", width=width, height=height, rotation=rotation)
    )

    media = await inspect_and_derive(storage, TASK)

    assert (media.video.width, media.video.height) == shown
    thumb = await _image(storage, thumbnail_key(TASK))
    assert thumb.size == shown  # small videos keep their size
    sheet = await _image(storage, spritesheet_key(TASK))
    tile_height = round(TILE_WIDTH * shown[1] / shown[0])
    assert sheet.size == (COLUMNS * TILE_WIDTH, ROWS * tile_height)


async def test_a_large_video_gets_a_thumbnail_at_most_1280_pixels_long(
    storage: LocalStorage, tmp_path: Path
) -> None:
    await _store(storage, write_mp4(tmp_path / "v.mp4", width=1920, height=1080, seconds=0.5))

    await inspect_and_derive(storage, TASK)

    assert (await _image(storage, thumbnail_key(TASK))).size == (1280, 720)
    assert (await _image(storage, spritesheet_key(TASK))).size == (640, 360)


async def test_spritesheet_tiles_show_evenly_spaced_frames_in_order(
    storage: LocalStorage, tmp_path: Path
) -> None:
    frames, fps = 48, 24
    await _store(storage, write_mp4(tmp_path / "v.mp4", seconds=frames / fps, fps=fps))

    await inspect_and_derive(storage, TASK)

    tiles = _tiles(await _image(storage, spritesheet_key(TASK)))
    # Tile i shows the first frame at or after the middle of the i-th sixteenth.
    expected = [brightness(math.ceil((i + 0.5) / 16 * frames), frames) for i in range(16)]
    assert [_mean(tile) for tile in tiles] == pytest.approx(expected, abs=6)


async def test_thumbnail_shows_the_first_frame(storage: LocalStorage, tmp_path: Path) -> None:
    frames = 12  # each a step of ~20 brighter than the one before
    await _store(storage, write_mp4(tmp_path / "v.mp4", seconds=1, fps=frames))

    await inspect_and_derive(storage, TASK)

    thumb = await _image(storage, thumbnail_key(TASK))
    assert THUMBNAIL_AT == 0
    assert _mean(thumb) == pytest.approx(brightness(0, frames), abs=6)


async def test_a_video_with_fewer_frames_than_tiles_fills_every_tile(
    storage: LocalStorage, tmp_path: Path
) -> None:
    await _store(storage, write_mp4(tmp_path / "v.mp4", seconds=3 / 24, fps=24))

    media = await inspect_and_derive(storage, TASK)

    tiles = _tiles(await _image(storage, spritesheet_key(TASK)))
    expected = [brightness(min(math.ceil((i + 0.5) / 16 * 3), 2), 3) for i in range(16)]
    assert [_mean(tile) for tile in tiles] == pytest.approx(expected, abs=6)
    assert media.video.duration_ms == 125


async def test_deleting_the_video_prefix_deletes_its_variants(
    storage: LocalStorage, tmp_path: Path
) -> None:
    await _store(storage, write_mp4(tmp_path / "v.mp4"))
    await inspect_and_derive(storage, TASK)

    for prefix in task_prefixes(TASK):
        await storage.delete_prefix(prefix)

    for key in (video_key(TASK), thumbnail_key(TASK), spritesheet_key(TASK)):
        assert await storage.stat(key) is None


async def test_an_invalid_video_stores_no_variants(storage: LocalStorage, tmp_path: Path) -> None:
    data = write_mp4(tmp_path / "v.mp4").read_bytes()
    await storage.put_bytes(video_key(TASK), data[: len(data) // 2], "video/mp4")

    with pytest.raises(InvalidVideo):
        await inspect_and_derive(storage, TASK)

    assert await storage.stat(thumbnail_key(TASK)) is None
    assert await storage.stat(spritesheet_key(TASK)) is None


async def test_frequent_keyframes_mean_reading_only_around_the_wanted_frames(
    storage: LocalStorage, tmp_path: Path
) -> None:
    # 96 incompressible frames, a keyframe every 3: each of the 17 frames wanted needs
    # at most the 2 before it.
    path = write_mp4(tmp_path / "v.mp4", seconds=8, fps=12, gop=3, noise=True)
    data = await _store(storage, path)

    media = await inspect_and_derive(storage, TASK)

    assert media.bytes_read < 0.6 * len(data)


async def test_a_single_keyframe_means_reading_the_file_about_once(
    storage: LocalStorage, tmp_path: Path
) -> None:
    path = write_mp4(tmp_path / "v.mp4", seconds=8, fps=12, gop=1000, noise=True)
    data = await _store(storage, path)

    media = await inspect_and_derive(storage, TASK)

    assert len(data) * 0.9 < media.bytes_read < 1.25 * len(data)
