import io
import time

import av
import pytest
from PIL import Image

from simulator.video import FPS, Picture, RenderSpec, render_mp4, render_video

RED = (220, 30, 40)
BLUE = (30, 60, 220)
GREEN = (20, 200, 60)
YELLOW = (240, 220, 20)


def png(rgb: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, rgb).save(buffer, "PNG")
    return buffer.getvalue()


def decode(data: bytes) -> tuple[av.container.InputContainer, list[Image.Image]]:
    container = av.open(io.BytesIO(data), mode="r")
    frames = [frame.to_image() for frame in container.decode(video=0)]
    container.seek(0)
    return container, frames


def close_to(pixel: tuple[int, ...], rgb: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, rgb, strict=False))


def test_rendered_video_is_a_playable_h264_mp4_of_the_requested_shape():
    data = render_video(RenderSpec(seconds=1, width=160, height=90))
    assert data[4:8] == b"ftyp"
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 160, 90)
        assert not container.streams.audio
        frames = list(container.decode(video=0))
    assert len(frames) == FPS
    assert frames[0].format.name == "yuv420p"


def test_length_and_audio_track_follow_the_spec():
    data = render_video(RenderSpec(seconds=8, width=320, height=180, audio=True))
    with av.open(io.BytesIO(data), mode="r") as container:
        assert container.duration is not None
        assert container.duration / 1_000_000 == pytest.approx(8.0, abs=0.15)
        (audio,) = container.streams.audio
        assert audio.codec_context.name == "aac"
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert samples / audio.codec_context.sample_rate == pytest.approx(8.0, abs=0.1)


def test_portrait_spec_renders_a_portrait_video():
    data = render_video(RenderSpec(seconds=0.5, width=180, height=320))
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (180, 320)


def test_first_frame_shows_the_first_image_and_the_last_frame_the_last_image():
    spec = RenderSpec(
        seconds=2,
        width=320,
        height=180,
        first=Picture(png(RED), "first"),
        last=Picture(png(BLUE), "last"),
    )
    container, frames = decode(render_video(spec))
    container.close()
    centre = (160, 50)  # above the text band
    assert close_to(frames[0].getpixel(centre), RED)
    assert close_to(frames[-1].getpixel(centre), BLUE)
    middle = frames[len(frames) // 2].getpixel(centre)
    assert not close_to(middle, RED) and not close_to(middle, BLUE)


def test_elements_are_shown_side_by_side_along_the_top():
    spec = RenderSpec(
        seconds=0.5,
        width=320,
        height=180,
        elements=(Picture(png(GREEN), "a"), Picture(png(YELLOW), "b")),
    )
    container, frames = decode(render_video(spec))
    container.close()
    tile = 180 // 3
    left = frames[0].getpixel((4 + tile // 2, 4 + tile // 2))
    right = frames[0].getpixel((4 + tile + 4 + tile // 2, 4 + tile // 2))
    assert close_to(left, GREEN)
    assert close_to(right, YELLOW)


def test_an_image_that_cannot_be_shown_becomes_a_grey_placeholder():
    spec = RenderSpec(
        seconds=0.5,
        width=320,
        height=180,
        first=Picture(None, "image from cdn.example"),
        last=Picture(b"not an image", "image/png image"),
    )
    container, frames = decode(render_video(spec))
    container.close()
    assert close_to(frames[0].getpixel((300, 60)), (96, 96, 96), 12)
    assert close_to(frames[-1].getpixel((300, 60)), (96, 96, 96), 12)


def test_the_prompt_band_differs_between_prompts_and_the_seed_changes_the_colour():
    def first_frame(spec: RenderSpec) -> Image.Image:
        container, frames = decode(render_video(spec))
        container.close()
        return frames[0]

    fox = first_frame(RenderSpec(seconds=0.25, text="a fox in the snow", seed=1))
    boat = first_frame(RenderSpec(seconds=0.25, text="a paper boat on a river", seed=1))
    band = (0, 130, 320, 180)
    assert fox.crop(band).tobytes() != boat.crop(band).tobytes()
    assert close_to(fox.getpixel((200, 50)), boat.getpixel((200, 50)), 6)
    other_seed = first_frame(RenderSpec(seconds=0.25, text="a fox in the snow", seed=2))
    assert not close_to(fox.getpixel((10, 50)), other_seed.getpixel((10, 50)), 10)


def test_plain_render_keeps_its_seconds_width_height_form():
    with av.open(io.BytesIO(render_mp4(seconds=0.5, width=64, height=36))) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height, stream.frames) == (64, 36, 4)


def test_frames_change_over_time():
    container, frames = decode(render_video(RenderSpec(seconds=1, width=64, height=36)))
    container.close()
    assert frames[0].tobytes() != frames[-1].tobytes()


def test_an_eight_second_veo3_video_renders_in_seconds_not_minutes():
    # About 0.3 s on one core; the bound only catches a render that lost its low frame rate.
    spec = RenderSpec(seconds=8, width=480, height=270, audio=True, text="x " * 200)
    started = time.perf_counter()
    render_video(spec)
    assert time.perf_counter() - started < 10.0


@pytest.mark.parametrize(
    "spec",
    [
        RenderSpec(width=321),
        RenderSpec(height=16),
        RenderSpec(seconds=0),
    ],
)
def test_bad_dimensions_or_length_are_rejected(spec):
    with pytest.raises(ValueError):
        render_video(spec)
