"""Pure data contracts: image sniffing, the catalogue, runtime config, status, requests."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from core.images import (
    MAX_IMAGE_BYTES,
    ImageError,
    decode_data_uri,
    encode_data_uri,
    sniff_image,
)
from schemas.api import MAX_PROMPT, VideoCreate
from schemas.catalogue import DEFAULT_CATALOGUE, ModelSpec, find_model
from schemas.config import RuntimeConfig
from schemas.status import (
    ACTIVE,
    TERMINAL,
    PublicStatus,
    TaskStatus,
    internal_statuses,
    public_status,
)
from tests.integration.images import png_bytes

PNG = png_bytes()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32
ZIP = b"PK\x03\x04" + b"\x00" * 64
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'


# --- core.images -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp")],
)
def test_sniff_recognises_png_jpeg_and_webp_by_magic_bytes(data: bytes, mime: str) -> None:
    assert sniff_image(data) == mime


@pytest.mark.parametrize(
    "data",
    [ZIP, SVG, b"", b"garbage bytes", b"RIFF\x00\x00\x00\x00WAVE", b"\x89PN", b"GIF89a" + PNG],
)
def test_sniff_rejects_zip_svg_and_garbage(data: bytes) -> None:
    assert sniff_image(data) is None


def test_data_uri_round_trips_to_mime_and_bytes() -> None:
    assert decode_data_uri(encode_data_uri("image/png", PNG), position=0) == ("image/png", PNG)


def test_data_uri_mime_is_sniffed_not_trusted() -> None:
    """A JPEG declared as PNG is reported as what it really is."""
    uri = f"data:image/png;base64,{base64.b64encode(JPEG).decode()}"
    assert decode_data_uri(uri, position=0)[0] == "image/jpeg"


def test_data_uri_with_zip_content_is_refused_and_names_position() -> None:
    uri = f"data:image/png;base64,{base64.b64encode(ZIP).decode()}"
    with pytest.raises(ImageError, match=r"images\[3\] is not a PNG") as info:
        decode_data_uri(uri, position=3)
    assert not info.value.too_large


@pytest.mark.parametrize(
    "uri",
    [
        "data:image/svg+xml;base64," + base64.b64encode(SVG).decode(),
        "data:text/plain;base64,aGVsbG8=",
        "data:image/png,notbase64",
        "https://example.com/a.png",
        "",
    ],
)
def test_data_uri_with_other_scheme_or_type_is_refused(uri: str) -> None:
    with pytest.raises(ImageError, match="must be an https:// URL or a data:image"):
        decode_data_uri(uri, position=0)


def test_data_uri_with_invalid_base64_is_refused() -> None:
    with pytest.raises(ImageError, match="not valid base64"):
        decode_data_uri("data:image/png;base64,iVBOR!!w0KGgo=", position=0)


def test_oversized_data_uri_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*_args: object, **_kwargs: object) -> bytes:
        raise AssertionError("b64decode must not run on an oversized payload")

    monkeypatch.setattr(base64, "b64decode", explode)
    payload = "A" * ((MAX_IMAGE_BYTES * 4) // 3 + 8)
    with pytest.raises(ImageError, match="larger than 10 MB") as info:
        decode_data_uri(f"data:image/png;base64,{payload}", position=1)
    assert info.value.too_large


def test_data_uri_decoding_to_just_over_10_mb_is_refused() -> None:
    data = PNG + b"\x00" * (MAX_IMAGE_BYTES + 1 - len(PNG))
    with pytest.raises(ImageError, match="larger than 10 MB") as info:
        decode_data_uri(encode_data_uri("image/png", data), position=0)
    assert info.value.too_large


def test_data_uri_of_exactly_10_mb_is_accepted() -> None:
    data = PNG + b"\x00" * (MAX_IMAGE_BYTES - len(PNG))
    mime, decoded = decode_data_uri(encode_data_uri("image/png", data), position=0)
    assert mime == "image/png" and len(decoded) == MAX_IMAGE_BYTES


# --- schemas.catalogue ----------------------------------------------------------------

PRICES = {
    "veo3": 100,
    "veo3-fast": 80,
    "veo3-pro": 150,
    "veo3-pro-frames": 200,
    "veo3-fast-frames": 160,
    "veo2": 80,
    "veo2-fast": 60,
    "veo2-pro": 120,
    "veo2-fast-frames": 120,
    "veo2-fast-components": 100,
    # Not in the product plan: the unknown-model default until an operator sets a price.
    "veo3.1": 100,
    "veo3.1-fast": 100,
    "veo3.1-pro": 100,
    "veo3.1-components": 100,
    # Google's Gemini API: priced as the gateway's model of the same family.
    "veo-3.1-generate-preview": 100,
    "veo-3.1-fast-generate-preview": 80,
    "veo-3.0-generate-001": 100,
    "veo-3.0-fast-generate-001": 80,
    "veo-2.0-generate-001": 80,
}


def test_catalogue_has_nineteen_models_priced_as_upstream_md() -> None:
    assert {m.id: m.price for m in DEFAULT_CATALOGUE} == PRICES
    assert len(DEFAULT_CATALOGUE) == 19


@pytest.mark.parametrize(
    ("model_id", "max_images", "roles"),
    [
        ("veo3", 0, "no images"),
        ("veo3-pro-frames", 1, "first frame"),
        ("veo3-fast-frames", 1, "first frame"),
        ("veo2-fast-frames", 2, "first frame, last frame"),
        ("veo2-fast-components", 3, "elements that appear in the video"),
    ],
)
def test_catalogue_image_limits_and_roles_text(model_id: str, max_images: int, roles: str) -> None:
    spec = find_model(list(DEFAULT_CATALOGUE), model_id)
    assert spec is not None
    assert spec.max_images == max_images
    assert spec.image_to_video is (max_images > 0)
    assert spec.roles_text() == roles


def test_only_veo3_and_veo3_1_text_models_let_the_caller_choose_the_aspect_ratio() -> None:
    supported = {m.id for m in DEFAULT_CATALOGUE if m.supports_aspect_ratio and not m.provider}
    assert supported == {"veo3", "veo3-fast", "veo3-pro", "veo3.1", "veo3.1-fast", "veo3.1-pro"}
    # Every Gemini model takes aspectRatio.
    assert all(m.supports_aspect_ratio for m in DEFAULT_CATALOGUE if m.provider == "gemini")


def test_find_model_returns_none_for_unknown_id() -> None:
    assert find_model(list(DEFAULT_CATALOGUE), "sora-2") is None


@pytest.mark.parametrize("bad_id", ["", "has space", "semi;colon", "x" * 101])
def test_model_spec_rejects_unsafe_ids(bad_id: str) -> None:
    with pytest.raises(ValidationError):
        ModelSpec(id=bad_id)


def test_model_spec_rejects_negative_price_and_too_many_images() -> None:
    with pytest.raises(ValidationError):
        ModelSpec(id="m", price=-1)
    with pytest.raises(ValidationError):
        ModelSpec(id="m", max_images=9)


# --- schemas.config -------------------------------------------------------------------


def test_runtime_config_defaults() -> None:
    config = RuntimeConfig()
    assert config.default_text_model == "veo3"
    assert config.default_image_model == "veo3-pro-frames"
    assert config.default_enhance_prompt is False
    assert config.max_concurrent_tasks_per_user == 3
    assert config.task_timeout_seconds == 600
    assert config.ambiguous_submit_policy == "fail"
    assert config.default_price == 100
    assert [m.id for m in config.models] == list(PRICES)


def test_runtime_config_default_models_exist_in_catalogue() -> None:
    config = RuntimeConfig()
    text, image = config.model(config.default_text_model), config.model(config.default_image_model)
    assert text is not None and text.text_to_video
    assert image is not None and image.image_to_video


def test_runtime_config_rejects_duplicate_model_ids() -> None:
    with pytest.raises(ValidationError, match="unique"):
        RuntimeConfig(models=[ModelSpec(id="veo3"), ModelSpec(id="veo3", price=5)])


def test_price_of_known_model_is_its_catalogue_price() -> None:
    assert RuntimeConfig().price_of("veo3-pro-frames") == 200


def test_price_of_unknown_model_is_default_price() -> None:
    assert RuntimeConfig().price_of("not-a-model") == 100
    assert RuntimeConfig(default_price=7).price_of("not-a-model") == 7


@pytest.mark.parametrize(
    "field",
    [
        {"task_timeout_seconds": 9},
        {"max_concurrent_tasks_per_user": 0},
        {"default_price": -1},
        {"ambiguous_submit_policy": "guess"},
        {"upstream_kind": "openai"},
    ],
)
def test_runtime_config_rejects_out_of_range_values(field: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RuntimeConfig.model_validate(field)


def test_runtime_config_default_catalogue_is_not_shared_between_instances() -> None:
    first, second = RuntimeConfig(), RuntimeConfig()
    first.models.append(ModelSpec(id="extra"))
    assert second.model("extra") is None


# --- schemas.status -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("internal", "public"),
    [
        (TaskStatus.QUEUED, PublicStatus.QUEUED),
        (TaskStatus.SUBMITTING, PublicStatus.QUEUED),
        (TaskStatus.RUNNING, PublicStatus.IN_PROGRESS),
        (TaskStatus.STORING, PublicStatus.IN_PROGRESS),
        (TaskStatus.COMPLETED, PublicStatus.COMPLETED),
        (TaskStatus.FAILED, PublicStatus.FAILED),
        (TaskStatus.CANCELLED, PublicStatus.FAILED),
    ],
)
def test_public_status_mapping_follows_design(internal: TaskStatus, public: PublicStatus) -> None:
    assert public_status(internal) == public


def test_public_failed_filter_includes_cancelled() -> None:
    assert set(internal_statuses(PublicStatus.FAILED)) == {
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
    }
    assert set(internal_statuses(PublicStatus.QUEUED)) == {
        TaskStatus.QUEUED,
        TaskStatus.SUBMITTING,
    }


def test_terminal_and_active_partition_every_status() -> None:
    assert {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED} == TERMINAL
    assert set(TaskStatus) == ACTIVE | TERMINAL and not ACTIVE & TERMINAL


# --- schemas.api.VideoCreate ----------------------------------------------------------


def test_prompt_of_2500_characters_is_accepted() -> None:
    assert len(VideoCreate(prompt="a" * MAX_PROMPT).prompt) == 2500


def test_prompt_of_2501_characters_is_rejected() -> None:
    with pytest.raises(ValidationError):
        VideoCreate(prompt="a" * (MAX_PROMPT + 1))


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_empty_or_blank_prompt_is_rejected(prompt: str) -> None:
    with pytest.raises(ValidationError):
        VideoCreate(prompt=prompt)


def test_unknown_fields_are_forbidden() -> None:
    with pytest.raises(ValidationError, match="extra"):
        VideoCreate.model_validate({"prompt": "p", "colour": "red"})


def test_metadata_within_limits_is_accepted() -> None:
    metadata = {f"k{i}": "v" * 512 for i in range(16)}
    metadata["k" * 64] = metadata.pop("k0")
    assert VideoCreate(prompt="p", metadata=metadata).metadata == metadata


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{i}": "v" for i in range(17)},
        {"": "v"},
        {"k" * 65: "v"},
        {"k": "v" * 513},
    ],
)
def test_metadata_over_limits_is_rejected(metadata: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="metadata"):
        VideoCreate(prompt="p", metadata=metadata)


def test_metadata_values_must_be_strings() -> None:
    with pytest.raises(ValidationError):
        VideoCreate.model_validate({"prompt": "p", "metadata": {"k": {"nested": 1}}})


@pytest.mark.parametrize("user", ["", "has space", "x" * 201, "semi;colon"])
def test_user_outside_pattern_is_rejected(user: str) -> None:
    with pytest.raises(ValidationError):
        VideoCreate(prompt="p", user=user)


def test_more_than_eight_images_are_rejected() -> None:
    with pytest.raises(ValidationError):
        VideoCreate(prompt="p", images=["https://x.example/a.png"] * 9)


@pytest.mark.parametrize(
    "field",
    [
        {"seconds": "seven"},
        {"size": "640*480"},
        {"aspect_ratio": "4/3"},
        {"seed": -1},
        {"seed": 2**32},
    ],
)
def test_out_of_range_options_are_rejected(field: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        VideoCreate.model_validate({"prompt": "p", **field})
