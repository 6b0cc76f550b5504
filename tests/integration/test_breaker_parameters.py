"""BREAKER FINDINGS (issue 9, parameters): strict xfails showing what the breaker session
found; a fix turns each into an XPASS failure, then delete its `xfail` marker. The numbers
refer to the breaker's report."""

from __future__ import annotations

import pytest

PROMPT = "a paper boat on a rainy street"


@pytest.mark.parametrize(
    ("params", "name"), [({"seconds": "12"}, "seconds"), ({"size": "1792x1024"}, "size")]
)
async def test_an_openai_value_the_model_cannot_honour_names_the_model(
    client_for, grant, params, name
):
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    response = await acme.post("/v1/videos", json={"prompt": PROMPT, "model": "veo3", **params})
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"] == "unsupported_parameter"
    assert problem["model"] == "veo3" and problem["parameter"] == name


@pytest.mark.parametrize("params", [{"seconds": "10"}, {"aspect_ratio": "1:1"}])
async def test_what_the_catalogue_offers_is_accepted(admin, client_for, grant, params):
    config = (await admin.get("/v1/admin/config")).json()
    extra = {
        "id": "op-model",
        "text_to_video": True,
        "max_images": 0,
        "image_roles": [],
        "aspect_ratios": ["16:9", "1:1"],
        "durations": [5, 10],
        "resolutions": ["720p"],
        "upsample": False,
        "price": 10,
    }
    response = await admin.put("/v1/admin/config", json={"models": [*config["models"], extra]})
    assert response.status_code == 200, response.text
    offered = {m["id"]: m for m in (await admin.get("/v1/models")).json()["data"]}["op-model"]
    assert "10" in offered["seconds"] and "1:1" in offered["aspect_ratios"]
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    body = {"prompt": PROMPT, "model": "op-model", **params}
    response = await acme.post("/v1/videos", json=body)
    assert response.status_code in (200, 201), response.text
