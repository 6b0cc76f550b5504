"""Render the small, real, playable MP4 a finished task serves, drawn from its request.

A :class:`RenderSpec` (see ``simulator.render_spec``) says what to draw; :func:`render_video`
turns it into an H.264 (yuv420p) MP4 with Pillow and PyAV, plus an AAC tone when
``spec.audio``. Every frame shows a coloured background picked by the seed with a bar
sweeping across it, the element images side by side along the top, and the model line and
the prompt in a dark band at the bottom. The first quarter of the frames shows the
first-frame image filling the picture, the last quarter the last-frame image; an image the
simulator cannot show (an ``https://`` URL it does not fetch, undecodable bytes) is a grey
placeholder naming it.
"""

import colorsys
import io
import math
import struct
import textwrap
from dataclasses import dataclass, field
from fractions import Fraction

import av
from PIL import Image, ImageDraw, ImageFont, ImageOps

FPS = 8
"""Frames per second: low, so an 8 s video renders in a fraction of a second."""
AUDIO_RATE = 16_000
AUDIO_FRAME = 1024  # samples per AAC frame
TONE_PERIOD = 32  # samples: a 500 Hz tone at 16 kHz repeats exactly
TONE_LEVEL = 0.2
BAR_FRACTION = 20  # the sweeping bar is 1/20 of the width
BAND_FRACTION = 0.34  # the text band takes the bottom third
IMAGE_SHARE = 0.25  # the first and the last quarter of the frames show the frame images


@dataclass(frozen=True, slots=True)
class Picture:
    """An input image as the renderer sees it: bytes to decode, or only a label."""

    data: bytes | None
    label: str


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """What one video shows. Width and height are even pixels, seconds > 0."""

    width: int = 320
    height: int = 180
    seconds: float = 2.0
    audio: bool = False
    title: str = ""
    text: str = ""
    seed: int = 0
    first: Picture | None = None
    last: Picture | None = None
    elements: tuple[Picture, ...] = field(default=())
    fps: int = FPS

    @property
    def frames(self) -> int:
        return max(1, round(self.seconds * self.fps))


def render_mp4(seconds: float = 2, width: int = 320, height: int = 180) -> bytes:
    """A plain ``seconds``-long ``width`` x ``height`` MP4 without images, text or sound."""
    return render_video(RenderSpec(width=width, height=height, seconds=seconds))


def render_video(spec: RenderSpec) -> bytes:
    """The MP4 of ``spec``.

    Raises ValueError for odd or too small dimensions or a non-positive length.
    """
    if spec.width % 2 or spec.height % 2 or spec.width < 32 or spec.height < 32:
        raise ValueError("width and height must be even and at least 32")
    if not spec.seconds > 0 or spec.fps <= 0:
        raise ValueError("seconds and fps must be positive")
    layers = _Layers.build(spec)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=spec.fps, options={"preset": "ultrafast"})
        video.width = spec.width
        video.height = spec.height
        video.pix_fmt = "yuv420p"
        audio = (
            container.add_stream("aac", rate=AUDIO_RATE, options={"aac_coder": "fast"})
            if spec.audio
            else None
        )
        if audio is not None:
            audio.layout = "mono"
        for index in range(spec.frames):
            frame = _video_frame(layers.frame(index, spec.frames))
            frame.pts = index
            frame.time_base = Fraction(1, spec.fps)
            container.mux(video.encode(frame.reformat(format="yuv420p")))
        container.mux(video.encode(None))
        if audio is not None:
            for sound in _tone(spec.seconds):
                container.mux(audio.encode(sound))
            container.mux(audio.encode(None))
    return buffer.getvalue()


def _video_frame(image: Image.Image) -> "av.VideoFrame":
    """An rgb24 frame holding ``image``, each row padded to the plane's line size."""
    frame = av.VideoFrame(image.width, image.height, "rgb24")
    plane = frame.planes[0]
    pixels = image.tobytes()
    row = image.width * 3
    if plane.line_size == row:
        plane.update(pixels)
    else:
        pad = bytes(plane.line_size - row)
        plane.update(b"".join(pixels[y * row : (y + 1) * row] + pad for y in range(image.height)))
    return frame


@dataclass(frozen=True, slots=True)
class _Layers:
    """The parts of a frame drawn once: background, overlays and the frame images."""

    background: Image.Image
    overlay: Image.Image  # RGBA: element strip and text band
    first: Image.Image | None
    last: Image.Image | None
    bar: tuple[int, int, int]

    @classmethod
    def build(cls, spec: RenderSpec) -> "_Layers":
        size = (spec.width, spec.height)
        hue = (spec.seed * 0.618034) % 1.0
        overlay = Image.new("RGBA", size, (0, 0, 0, 0))
        _draw_elements(overlay, spec.elements)
        _draw_band(overlay, spec.title, spec.text)
        return cls(
            background=_gradient(size, hue),
            overlay=overlay,
            first=_cover(spec.first, size),
            last=_cover(spec.last, size),
            bar=_rgb(hue + 0.5, 0.35, 1.0),
        )

    def frame(self, index: int, frames: int) -> Image.Image:
        shown = max(1, int(frames * IMAGE_SHARE))
        if self.first is not None and index < shown:
            picture = self.first.copy()
        elif self.last is not None and index >= frames - shown:
            picture = self.last.copy()
        else:
            picture = self.background.copy()
            width, height = picture.size
            bar = max(2, width // BAR_FRACTION)
            left = index * (width - bar) // max(frames - 1, 1)
            ImageDraw.Draw(picture).rectangle((left, 0, left + bar - 1, height), fill=self.bar)
        picture.paste(self.overlay, (0, 0), self.overlay)
        return picture


def _rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def _gradient(size: tuple[int, int], hue: float) -> Image.Image:
    """A left-to-right gradient between two shades of ``hue``."""
    width, height = size
    left, right = _rgb(hue, 0.75, 0.45), _rgb(hue + 0.08, 0.6, 0.9)
    row = bytearray()
    for x in range(width):
        t = x / max(width - 1, 1)
        row += bytes(round(a + (b - a) * t) for a, b in zip(left, right, strict=True))
    return Image.frombytes("RGB", size, bytes(row) * height)


def _open(picture: Picture) -> Image.Image | None:
    if picture.data is None:
        return None
    try:
        with Image.open(io.BytesIO(picture.data)) as image:
            return ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _placeholder(label: str, size: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, (96, 96, 96))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(8, min(size) // 8))
    lines = textwrap.wrap(label, width=max(8, size[0] // max(4, min(size) // 14))) or ["?"]
    draw.multiline_text((4, 4), "\n".join(lines[:4]), fill=(240, 240, 240), font=font)
    return image


def _cover(picture: Picture | None, size: tuple[int, int]) -> Image.Image | None:
    """``picture`` scaled and cropped to fill ``size``, or its placeholder."""
    if picture is None:
        return None
    image = _open(picture)
    if image is None:
        return _placeholder(picture.label, size)
    return ImageOps.fit(image, size, Image.Resampling.BILINEAR)


def _draw_elements(overlay: Image.Image, elements: tuple[Picture, ...]) -> None:
    """The element images side by side along the top, each in a tile of a third of the height."""
    if not elements:
        return
    width, height = overlay.size
    gap = max(2, width // 80)
    tile_h = height // 3
    tile_w = min(tile_h, (width - gap * (len(elements) + 1)) // len(elements))
    for number, element in enumerate(elements):
        image = _open(element)
        tile = (
            _placeholder(element.label, (tile_w, tile_h))
            if image is None
            else ImageOps.pad(image, (tile_w, tile_h), color=(0, 0, 0))
        )
        overlay.paste(tile, (gap + number * (tile_w + gap), gap))


def _draw_band(overlay: Image.Image, title: str, text: str) -> None:
    """A dark band at the bottom with the title line and the wrapped prompt."""
    width, height = overlay.size
    top = height - int(height * BAND_FRACTION)
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, top, width, height), fill=(0, 0, 0, 190))
    size = max(9, min(width, height) // 13)
    font = ImageFont.load_default(size=size)
    average = max(1.0, font.getlength("abcdefghijklmnopqrstuvwxyz") / 26)
    columns = max(10, int((width - 8) / average))
    rows = max(1, (height - top - 4) // (size + 2) - 1)
    lines = textwrap.wrap(text, width=columns) or [""]
    if len(lines) > rows:
        lines = [*lines[: rows - 1], lines[rows - 1][: columns - 1] + "…"]
    draw.text((4, top + 2), title, fill=(255, 220, 80, 255), font=font)
    draw.multiline_text(
        (4, top + 2 + size + 2), "\n".join(lines), fill=(255, 255, 255, 255), font=font, spacing=2
    )


def _tone(seconds: float) -> list["av.AudioFrame"]:
    """Mono float-planar frames of a quiet 500 Hz tone lasting ``seconds``."""
    period = struct.pack(
        f"<{TONE_PERIOD}f",
        *(TONE_LEVEL * math.sin(2 * math.pi * n / TONE_PERIOD) for n in range(TONE_PERIOD)),
    )
    chunk = period * (AUDIO_FRAME // TONE_PERIOD)
    total = round(seconds * AUDIO_RATE)
    frames = []
    for start in range(0, total, AUDIO_FRAME):
        samples = min(AUDIO_FRAME, total - start)
        frame = av.AudioFrame(format="fltp", layout="mono", samples=samples)
        frame.planes[0].update(chunk[: samples * 4])
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        frames.append(frame)
    return frames
