import base64
import hashlib
import io
import json

import pytest
from PIL import Image

from simulator.images import read_image
from simulator.render_spec import render_spec
from simulator.submit import parse_submit


def png_uri(rgb: tuple[int, int, int]) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), rgb).save(buffer, "PNG")
    data = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode(), data


def request(**fields: object):
    body = {"prompt": "a fox [sim:duration=3]", "model": "veo3", **fields}
    return parse_submit(json.dumps(body).encode())


@pytest.mark.parametrize(
    ("model", "seconds", "audio"),
    [
        ("veo3", 8.0, True),
        ("veo3-fast", 8.0, True),
        ("veo3-pro-frames", 8.0, True),
        ("veo3.1", 8.0, True),
        ("veo3.1-components", 8.0, True),
        ("veo2", 5.0, False),
        ("veo2-fast-frames", 5.0, False),
        ("something-else", 8.0, False),
    ],
)
def test_length_and_audio_follow_the_model_family(model, seconds, audio):
    spec = render_spec(request(model=model))
    assert (spec.seconds, spec.audio) == (seconds, audio)


@pytest.mark.parametrize(
    ("fields", "size"),
    [
        ({}, (320, 180)),
        ({"aspect_ratio": "16:9"}, (320, 180)),
        ({"aspect_ratio": "9:16"}, (180, 320)),
        ({"aspect_ratio": "16:9", "enable_upsample": True}, (480, 270)),
        ({"aspect_ratio": "9:16", "enable_upsample": True}, (270, 480)),
        ({"enable_upsample": False}, (320, 180)),
    ],
)
def test_aspect_ratio_and_upsample_decide_the_size(fields, size):
    spec = render_spec(request(**fields))
    assert (spec.width, spec.height) == size


def test_frames_models_take_first_and_last_frame_components_models_take_elements():
    red, red_bytes = png_uri((255, 0, 0))
    blue, blue_bytes = png_uri((0, 0, 255))
    frames = render_spec(request(model="veo2-fast-frames", images=[red, blue]))
    assert frames.first is not None and frames.first.data == red_bytes
    assert frames.last is not None and frames.last.data == blue_bytes
    assert frames.elements == ()
    one = render_spec(request(model="veo3-pro-frames", images=[red]))
    assert one.first is not None and one.last is None
    parts = render_spec(request(model="veo2-fast-components", images=[red, blue, red]))
    assert parts.first is None and parts.last is None
    assert [e.data for e in parts.elements] == [red_bytes, blue_bytes, red_bytes]


def test_an_image_url_is_not_fetched_and_its_placeholder_names_the_host():
    spec = render_spec(request(model="veo3-pro-frames", images=["https://cdn.example/a/b.png"]))
    assert spec.first is not None
    assert spec.first.data is None
    assert spec.first.label == "image from cdn.example"


def test_text_is_the_prompt_without_directives_and_the_title_names_the_parameters():
    spec = render_spec(request(aspect_ratio="9:16", enable_upsample=True, seed=42))
    assert spec.text == "a fox"
    assert spec.title == "veo3 · 9:16 · upsampled · seed 42"
    assert spec.seed == 42
    assert render_spec(request()).seed == render_spec(request()).seed


def test_data_uri_images_are_decoded_and_described_without_their_bytes():
    uri, data = png_uri((0, 255, 0))
    image = read_image(uri)
    assert (image.source, image.mime, image.data) == ("data", "image/png", data)
    assert image.describe() == {
        "source": "data",
        "mime": "image/png",
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert read_image("https://x.test/a.png").describe() == {
        "source": "url",
        "url": "https://x.test/a.png",
    }
    broken = read_image("data:image/jpeg;base64,@@@")
    assert broken.data is None
    assert broken.describe() == {
        "source": "data",
        "mime": "image/jpeg",
        "error": "data URI is not base64",
    }


def test_received_request_keeps_every_field_and_describes_the_images():
    uri, data = png_uri((0, 255, 0))
    submitted = request(images=[uri], seed=7, aspect_ratio="16:9", extra={"a": 1})
    assert submitted.received == {
        "prompt": "a fox [sim:duration=3]",
        "model": "veo3",
        "images": [
            {
                "source": "data",
                "mime": "image/png",
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        ],
        "seed": 7,
        "aspect_ratio": "16:9",
        "extra": {"a": 1},
    }
