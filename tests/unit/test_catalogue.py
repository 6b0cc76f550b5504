"""The catalogue's typed shape, and the earlier shape stored documents still have."""

from schemas.api import ModelInfo
from schemas.catalogue import DEFAULT_CATALOGUE, ImageRole, ModelSpec, find_model
from schemas.config import RuntimeConfig

EARLIER_DOCUMENT_MODELS = [
    {"id": "veo3", "text_to_video": True, "max_images": 0, "image_roles": [], "price": 100,
     "supports_aspect_ratio": True},
    {"id": "veo2-fast-frames", "max_images": 2, "image_roles": ["first frame", "last frame"],
     "price": 120, "supports_aspect_ratio": False},
    {"id": "veo2-fast-components", "max_images": 3,
     "image_roles": ["elements that appear in the video"] * 3, "price": 100},
    {"id": "veo3.1-components", "max_images": 3, "image_roles": ["element"] * 3, "price": 250},
]  # fmt: skip


def test_a_document_stored_in_the_earlier_shape_still_reads() -> None:
    config = RuntimeConfig.model_validate({"models": EARLIER_DOCUMENT_MODELS})
    models = {m.id: m for m in config.models}

    assert models["veo3"].aspect_ratios == ["16:9", "9:16"] and models["veo3"].upsample
    # A built-in model stored before capabilities were recorded gets the built-in ones.
    assert models["veo3"].sizes == ["1280x720", "720x1280", "1920x1080", "1080x1920"]
    assert models["veo2-fast-frames"].aspect_ratios == ["16:9"]
    assert models["veo2-fast-frames"].durations == []
    assert models["veo2-fast-frames"].image_roles == [ImageRole.FIRST_FRAME, ImageRole.LAST_FRAME]
    assert models["veo2-fast-components"].image_roles == [ImageRole.REFERENCE] * 3
    assert models["veo3.1-components"].image_roles == [ImageRole.REFERENCE] * 3


def test_earlier_and_current_shapes_read_the_same() -> None:
    for spec in DEFAULT_CATALOGUE:
        capabilities = {"aspect_ratios", "upsample", "durations", "resolutions"}
        earlier = spec.model_dump(mode="json", exclude=capabilities)
        earlier["image_roles"] = spec.role_labels()
        earlier["supports_aspect_ratio"] = spec.supports_aspect_ratio
        assert ModelSpec.model_validate(earlier) == spec


def test_stored_shape_is_typed_roles_and_capabilities() -> None:
    spec = find_model(list(DEFAULT_CATALOGUE), "veo2-fast-frames")
    assert spec is not None
    dumped = spec.model_dump(mode="json")

    assert dumped["image_roles"] == ["first_frame", "last_frame"]
    assert "supports_aspect_ratio" not in dumped
    assert ModelSpec.model_validate(dumped) == spec


def test_models_endpoint_shows_the_display_wording() -> None:
    shown = {m.id: ModelInfo.of(m).image_roles for m in DEFAULT_CATALOGUE}

    assert shown["veo2-fast-frames"] == ["first frame", "last frame"]
    assert shown["veo2-fast-components"] == ["elements that appear in the video"] * 3
    assert shown["veo3"] == []


def test_models_endpoint_names_the_roles_as_a_create_takes_them() -> None:
    shown = {m.id: ModelInfo.of(m).image_role_names for m in DEFAULT_CATALOGUE}

    assert shown["veo2-fast-frames"] == ["first_frame", "last_frame"]
    assert shown["veo2-fast-components"] == ["reference"] * 3
    assert shown["veo3"] == []


def test_roles_by_position_and_the_provider_model_id() -> None:
    spec = ModelSpec(id="public", provider_model="veo-3.1-generate-preview", max_images=3,
                     image_roles=[ImageRole.FIRST_FRAME, ImageRole.LAST_FRAME])  # fmt: skip

    assert [spec.role_at(i) for i in range(3)] == [
        ImageRole.FIRST_FRAME,
        ImageRole.LAST_FRAME,
        ImageRole.REFERENCE,
    ]
    assert spec.upstream_model == "veo-3.1-generate-preview"
    assert ModelSpec(id="veo3").upstream_model == "veo3"
    assert ModelSpec(id="veo3").provider is None


def test_gemini_models_take_what_upstream_md_says() -> None:
    models = {m.id: m for m in DEFAULT_CATALOGUE if m.provider == "gemini"}

    assert set(models) == {
        "veo-3.1-generate-preview",
        "veo-3.1-fast-generate-preview",
        "veo-3.0-generate-001",
        "veo-3.0-fast-generate-001",
        "veo-2.0-generate-001",
    }
    veo31, veo3, veo2 = (
        models["veo-3.1-generate-preview"],
        models["veo-3.0-generate-001"],
        models["veo-2.0-generate-001"],
    )
    assert (veo31.durations, veo3.durations, veo2.durations) == ([4, 6, 8], [4, 6, 8], [5, 6, 8])
    assert veo31.sizes == ["1280x720", "720x1280", "1920x1080", "1080x1920"]
    assert veo2.sizes == ["1280x720", "720x1280"]
    assert veo31.image_roles == [ImageRole.FIRST_FRAME, ImageRole.LAST_FRAME]
    assert veo31.reference_images == 3 and veo3.reference_images == 0
    assert veo3.image_roles == veo2.image_roles == [ImageRole.FIRST_FRAME]
    assert veo31.longest_seconds_only == ["1080p", "reference_images"]
    assert veo3.longest_seconds_only == ["1080p"] and veo2.longest_seconds_only == []
    for spec in models.values():
        assert not spec.seed and not spec.enhance_prompt and spec.negative_prompt
        assert spec.default_seconds == 8 and not spec.upsample
        assert "seed" not in spec.parameters and "negative_prompt" in spec.parameters


def test_roles_requested_are_the_positional_ones_or_only_references_where_taken() -> None:
    veo31 = find_model(list(DEFAULT_CATALOGUE), "veo-3.1-generate-preview")
    veo3 = find_model(list(DEFAULT_CATALOGUE), "veo-3.0-generate-001")
    assert veo31 is not None and veo3 is not None
    first, last, ref = ImageRole.FIRST_FRAME, ImageRole.LAST_FRAME, ImageRole.REFERENCE

    assert veo31.roles_for(2, None) == [first, last]
    assert veo31.roles_for(3, None) is None  # three frames do not exist
    assert veo31.roles_for(3, [ref, ref, ref]) == [ref, ref, ref]
    assert veo31.roles_for(2, [first, ref]) is None  # no mixing
    assert veo31.roles_for(1, [last]) is None  # a last frame needs a first
    assert veo31.roles_for(4, [ref] * 4) is None
    assert veo3.roles_for(1, [ref]) is None
    assert veo3.roles_for(1, [first]) == [first]


def test_routes_name_implemented_providers_and_are_read_in_order() -> None:
    import pytest
    from pydantic import ValidationError

    from schemas.catalogue import Route
    from schemas.config import RuntimeConfigPatch

    fallback = Route(provider="gemini", provider_model="veo-3.0-fast-generate-001")
    spec = ModelSpec(id="veo3-fast", routes=[Route(provider="gateway"), fallback])
    assert RuntimeConfigPatch(models=[spec]).models == [spec]
    assert [r.provider for r in spec.route_list("simulator")] == ["gateway", "gemini"]
    with pytest.raises(ValidationError, match="unknown upstream kind"):
        RuntimeConfigPatch(models=[ModelSpec(id="m", routes=[Route(provider="nowhere")])])
