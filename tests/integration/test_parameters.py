"""size, aspect_ratio and seconds are honoured or refused per model, never silently
ignored: a refusal is a 400 problem naming the model and the values it accepts, and it
costs nothing."""

from __future__ import annotations

import pytest

PROMPT = "a paper boat on a rainy street"

REFUSED = [
    ("veo3", {"seconds": "4"}, "seconds", ["8"]),
    ("veo3", {"seconds": "5"}, "seconds", ["8"]),
    ("veo2", {"seconds": "8"}, "seconds", []),
    ("veo2-fast-frames", {"seconds": "5"}, "seconds", []),
    ("veo2", {"size": "1920x1080"}, "size", ["1280x720"]),
    ("veo2", {"size": "720x1280"}, "size", ["1280x720"]),
    ("veo2", {"aspect_ratio": "9:16"}, "aspect_ratio", ["16:9"]),
    ("veo3-pro-frames", {"size": "1080x1920"}, "size", ["1280x720"]),
    ("veo3.1-components", {"aspect_ratio": "9:16"}, "aspect_ratio", ["16:9"]),
]


@pytest.mark.parametrize(("model", "params", "name", "accepted"), REFUSED)
async def test_a_parameter_the_model_cannot_honour_is_a_problem_naming_what_it_accepts(
    client_for, grant, assert_ledger, model, params, name, accepted
):
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    response = await acme.post("/v1/videos", json={"prompt": PROMPT, "model": model, **params})
    assert response.status_code == 400, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "unsupported_parameter"
    assert problem["model"] == model and problem["parameter"] == name
    assert problem["accepted"] == accepted
    assert model in problem["detail"] and str(params[name]) in problem["detail"]
    balance = (await acme.get("/v1/credits/acme")).json()
    assert (balance["balance"], balance["held"]) == (1000, 0)
    await assert_ledger()


async def test_a_size_that_contradicts_the_aspect_ratio_is_refused(client_for, grant):
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    body = {"prompt": PROMPT, "model": "veo3", "size": "1280x720", "aspect_ratio": "9:16"}
    response = await acme.post("/v1/videos", json=body)
    assert response.status_code == 400 and response.json()["code"] == "unsupported_parameter"


@pytest.mark.parametrize(
    ("model", "params", "seconds", "size"),
    [
        ("veo3", {"seconds": "8", "size": "1920x1080"}, "8", "1920x1080"),
        ("veo3", {"size": "720x1280"}, "8", "720x1280"),
        ("veo3.1-fast", {"aspect_ratio": "9:16"}, "8", "720x1280"),
        ("veo2", {"size": "1280x720"}, "8", "1280x720"),
        ("veo3-pro-frames", {"aspect_ratio": "16:9"}, "8", "1280x720"),
    ],
)
async def test_an_honoured_parameter_is_what_the_video_object_reports(
    client_for, grant, model, params, seconds, size
):
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    body = {"prompt": PROMPT, "model": model, **params}
    if model == "veo3-pro-frames":
        from tests.integration.images import PNG_URI

        body["images"] = [PNG_URI]
    response = await acme.post("/v1/videos", json=body)
    assert response.status_code == 200, response.text
    video = response.json()
    assert (video["seconds"], video["size"]) == (seconds, size)


async def test_the_models_endpoint_lists_what_each_model_accepts(client_for):
    acme = await client_for("acme")
    models = {m["id"]: m for m in (await acme.get("/v1/models")).json()["data"]}
    assert models["veo3"]["sizes"] == ["1280x720", "720x1280", "1920x1080", "1080x1920"]
    assert models["veo3"]["seconds"] == ["8"]
    assert models["veo2"]["sizes"] == ["1280x720"] and models["veo2"]["seconds"] == []
    assert models["veo3.1-pro"]["image_roles"] == ["first frame", "last frame"]
    assert models["veo3.1"]["price"] == 100
