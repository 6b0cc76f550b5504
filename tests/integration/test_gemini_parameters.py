"""The Gemini models' parameters are validated per model at create (a refusal is a 400
naming the model and what it accepts, and costs nothing); the runtime config keeps each
provider's credentials encrypted, write-only and masked."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.images import PNG_URI

PROMPT = "a lighthouse at dusk"
VEO31, VEO3, VEO2 = "veo-3.1-generate-preview", "veo-3.0-generate-001", "veo-2.0-generate-001"
REFS = {"images": [PNG_URI] * 3, "image_roles": ["reference"] * 3}

REFUSED: list[tuple[str, dict[str, Any], str, list[str]]] = [
    (VEO31, {"seconds": "5"}, "seconds", ["4", "6", "8"]),
    (VEO2, {"seconds": "4"}, "seconds", ["5", "6", "8"]),
    (VEO2, {"size": "1920x1080"}, "size", ["1280x720", "720x1280"]),
    (VEO3, {"size": "1920x1080", "seconds": "4"}, "seconds", ["8"]),
    (VEO31, {**REFS, "seconds": "6"}, "seconds", ["8"]),
    (VEO3, {"seed": 7}, "seed", []),
    (VEO3, {"enhance_prompt": True}, "enhance_prompt", ["false"]),
    (VEO3, {"person_generation": "dont_allow"}, "person_generation", ["allow_all", "allow_adult"]),
    ("veo3", {"negative_prompt": "blur"}, "negative_prompt", []),
    ("veo3", {"person_generation": "allow_all"}, "person_generation", []),
    (VEO3, {"images": [PNG_URI], "image_roles": ["reference"]}, "image_roles", None),
    (VEO31, {"images": [PNG_URI] * 2, "image_roles": ["first_frame", "reference"]},
     "image_roles", None),
    (VEO31, {"images": [PNG_URI], "image_roles": ["last_frame"]}, "image_roles", None),
]  # fmt: skip


@pytest.mark.parametrize(("model", "params", "name", "accepted"), REFUSED)
async def test_what_a_model_cannot_honour_is_a_problem_naming_the_model_and_what_it_accepts(
    acme, assert_ledger, model, params, name, accepted
):
    response = await acme.post("/v1/videos", json={"prompt": PROMPT, "model": model, **params})
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"] == "unsupported_parameter"
    assert (problem["model"], problem["parameter"]) == (model, name)
    if accepted is not None:
        assert problem["accepted"] == accepted
    assert model in problem["detail"]
    balance = (await acme.get("/v1/credits/acme")).json()
    assert balance["held"] == 0
    await assert_ledger()


async def test_more_images_than_frames_without_roles_and_a_roles_count_mismatch_are_refused(acme):
    three = await acme.post(
        "/v1/videos", json={"prompt": PROMPT, "model": VEO31, "images": [PNG_URI] * 3}
    )
    assert three.status_code == 400 and three.json()["code"] == "too_many_images"
    assert "up to 3 with image_roles reference" in three.json()["detail"]
    mismatch = await acme.post(
        "/v1/videos",
        json={"prompt": PROMPT, "model": VEO31, "images": [PNG_URI], "image_roles": []},
    )
    assert mismatch.status_code == 400 and mismatch.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    ("model", "params", "seconds", "size"),
    [
        (VEO31, {"size": "1080x1920"}, "8", "1080x1920"),
        (VEO31, {"seconds": "4", "aspect_ratio": "9:16"}, "4", "720x1280"),
        (VEO31, {**REFS}, "8", "1280x720"),
        (VEO31, {"images": [PNG_URI] * 2, "negative_prompt": "rain"}, "8", "1280x720"),
        (VEO3, {"person_generation": "allow_adult", "images": [PNG_URI]}, "8", "1280x720"),
        (VEO2, {"seconds": "5", "size": "720x1280"}, "5", "720x1280"),
    ],
)
async def test_what_a_model_honours_is_accepted_and_reported(acme, model, params, seconds, size):
    response = await acme.post("/v1/videos", json={"prompt": PROMPT, "model": model, **params})
    assert response.status_code == 200, response.text
    video = response.json()
    assert (video["seconds"], video["size"]) == (seconds, size)
    assert video["enhance_prompt"] is False


async def test_the_models_endpoint_shows_parameters_and_image_roles_per_model(acme):
    models = {m["id"]: m for m in (await acme.get("/v1/models")).json()["data"]}

    veo31 = models[VEO31]
    assert veo31["image_roles"] == ["first frame", "last frame"]
    assert veo31["reference_images"] == 3
    assert veo31["seconds"] == ["4", "6", "8"]
    assert veo31["longest_seconds_only"] == ["1080p", "reference_images"]
    assert veo31["parameters"] == [
        "seconds",
        "size",
        "aspect_ratio",
        "negative_prompt",
        "person_generation",
        "image_roles",
    ]
    assert models[VEO2]["person_generation"] == ["allow_all", "allow_adult", "dont_allow"]
    assert "seed" in models["veo3"]["parameters"]
    assert "negative_prompt" not in models["veo3"]["parameters"]


async def test_provider_credentials_are_encrypted_write_only_and_masked(admin, engine):
    key = "AIzaSy-provider-key-0123456789"
    put = await admin.put(
        "/v1/admin/config",
        json={"providers": {"gemini": {"base_url": "https://gemini.example", "api_key": key}}},
    )
    assert put.status_code == 200, put.text
    shown = put.json()["providers"]["gemini"]
    assert shown == {
        "base_url": "https://gemini.example",
        "api_key": "****" + key[-4:],
        "api_key_set": True,
        "api_key_unreadable": False,
    }
    read = (await admin.get("/v1/admin/config")).json()
    assert read["providers"] == put.json()["providers"]
    async with engine.connect() as conn:
        from core.repo import config as repo

        stored = await repo.document(conn)
    assert stored is not None and key not in str(stored)

    # Sending the mask back changes nothing; a new base URL without a key clears it.
    again = await admin.put(
        "/v1/admin/config", json={"providers": {"gemini": {"api_key": shown["api_key"]}}}
    )
    assert again.json()["providers"]["gemini"]["api_key_set"] is True
    moved = await admin.put(
        "/v1/admin/config", json={"providers": {"gemini": {"base_url": "https://other.example"}}}
    )
    assert moved.json()["providers"]["gemini"] == {
        "base_url": "https://other.example",
        "api_key": "",
        "api_key_set": False,
        "api_key_unreadable": False,
    }


async def test_the_configured_upstream_is_not_also_a_provider_entry(admin):
    kind = (await admin.get("/v1/admin/config")).json()["upstream_kind"]
    response = await admin.put(
        "/v1/admin/config", json={"providers": {kind: {"api_key": "k" * 20}}}
    )
    assert response.status_code == 400
    assert "duplicates the configured upstream" in response.text


async def test_secrets_reencrypt_moves_the_provider_keys_too(admin, engine, settings):
    from core.reencrypt import reencrypt_all
    from core.repo import config as repo
    from core.secrets import SecretBox

    key = "AIzaSy-rotated-key-0123456789"
    await admin.put("/v1/admin/config", json={"providers": {"gemini": {"api_key": key}}})
    rotated = SecretBox("a-new-secret-key-0123456789abcdefghijkl", settings.secret_key)

    report = await reencrypt_all(engine, rotated)

    assert report.complete and report.moved >= 1
    async with engine.connect() as conn:
        stored = await repo.document(conn)
    assert stored is not None
    token = stored["providers"]["gemini"]["api_key"]
    assert rotated.is_current(token) and rotated.decrypt(token) == key
