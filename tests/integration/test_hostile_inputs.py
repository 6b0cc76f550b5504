"""Every bad request is a 4xx problem+json with a stable code, and costs nothing: on
PostgreSQL and on SQLite (tests/integration/test_hostile_kinds.py has the kinds of input
found to fail, this module the basics)."""

from __future__ import annotations

import base64

import pytest

from tests.integration.conftest import BACKENDS
from tests.integration.images import PNG_URI, ZIP_URI


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


PROMPT = "a lighthouse in a storm"
FIFTEEN_MB_PNG = (
    "data:image/png;base64,"
    + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * (15 * 1024 * 1024)).decode()
)

HOSTILE_BODIES = [
    ("oversize_prompt", {"prompt": "x" * 2501}, 400, "invalid_prompt"),
    ("empty_prompt", {"prompt": ""}, 400, "invalid_prompt"),
    ("blank_prompt", {"prompt": "   "}, 400, "invalid_prompt"),
    ("prompt_not_string", {"prompt": 42}, 400, "invalid_prompt"),
    (
        "three_images_on_one_image_model",
        {"prompt": PROMPT, "model": "veo3-pro-frames", "images": [PNG_URI] * 3},
        400,
        "too_many_images",
    ),
    (
        "images_on_text_model",
        {"prompt": PROMPT, "model": "veo3", "images": [PNG_URI]},
        400,
        "images_not_supported",
    ),
    (
        "zip_as_data_uri",
        {"prompt": PROMPT, "model": "veo3-pro-frames", "images": [ZIP_URI]},
        400,
        "invalid_image",
    ),
    (
        "fifteen_mb_image",
        {"prompt": PROMPT, "model": "veo3-pro-frames", "images": [FIFTEEN_MB_PNG]},
        413,
        "body_too_large",
    ),
    (
        "http_image_url",
        {"prompt": PROMPT, "model": "veo3-pro-frames", "images": ["http://x.example/a.png"]},
        400,
        "invalid_image",
    ),
    (
        "file_image_url",
        {"prompt": PROMPT, "model": "veo3-pro-frames", "images": ["file:///etc/passwd"]},
        400,
        "invalid_image",
    ),
    (
        "svg_data_uri",
        {
            "prompt": PROMPT,
            "model": "veo3-pro-frames",
            "images": ["data:image/svg+xml;base64,PHN2Zz4="],
        },
        400,
        "invalid_image",
    ),
    (
        "bad_base64",
        {"prompt": PROMPT, "model": "veo3-pro-frames", "images": ["data:image/png;base64,!!!"]},
        400,
        "invalid_image",
    ),
    ("unknown_model", {"prompt": PROMPT, "model": "sora-2"}, 400, "unknown_model"),
    ("unknown_field", {"prompt": PROMPT, "colour": "red"}, 400, "validation_error"),
    ("bad_user", {"prompt": PROMPT, "user": "a b/c"}, 400, "validation_error"),
    (
        "metadata_too_big",
        {"prompt": PROMPT, "metadata": {str(i): "v" for i in range(17)}},
        400,
        "invalid_metadata",
    ),
    ("negative_seed", {"prompt": PROMPT, "seed": -1}, 400, "validation_error"),
    ("bad_size", {"prompt": PROMPT, "size": "999x999"}, 400, "unsupported_parameter"),
    ("size_not_a_size", {"prompt": PROMPT, "size": "big"}, 400, "validation_error"),
]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [case[1:] for case in HOSTILE_BODIES],
    ids=[case[0] for case in HOSTILE_BODIES],
)
async def test_hostile_create_is_a_problem_and_holds_nothing(
    client_for, grant, assert_ledger, body, status, code
):
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    response = await acme.post("/v1/videos", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert problem["status"] == status and problem["detail"]
    credits = (await acme.get("/v1/credits/acme")).json()
    assert (credits["balance"], credits["held"]) == (1000, 0)
    await assert_ledger()


async def test_too_many_images_message_names_model_limit_and_roles(client_for):
    acme = await client_for("acme")
    body = {"prompt": PROMPT, "model": "veo2-fast-frames", "images": [PNG_URI] * 3}
    problem = (await acme.post("/v1/videos", json=body)).json()
    assert (
        problem["detail"] == "veo2-fast-frames accepts at most 2 images (first frame, last frame)."
    )


async def test_unknown_model_lists_valid_ones(client_for):
    acme = await client_for("acme")
    problem = (await acme.post("/v1/videos", json={"prompt": PROMPT, "model": "nope"})).json()
    assert "veo3-fast" in problem["detail"] and "veo2-fast-components" in problem["valid"]


async def test_malformed_json_is_invalid_json(client_for):
    acme = await client_for("acme")
    response = await acme.post(
        "/v1/videos", content=b'{"prompt": "x"', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_json"


async def test_json_array_body_is_invalid_json(client_for):
    acme = await client_for("acme")
    response = await acme.post("/v1/videos", json=[1, 2])
    assert response.status_code == 400 and response.json()["code"] == "invalid_json"


async def test_wrong_content_type_is_415(client_for):
    acme = await client_for("acme")
    response = await acme.post(
        "/v1/videos", content=b"prompt=x", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"


async def test_missing_key_is_401(app):
    import httpx

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as anon:
        response = await anon.get("/v1/videos")
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"


async def test_wrong_scheme_and_unknown_key_are_401(client_for):
    acme = await client_for("acme")
    for header in ("Basic abc", "Bearer gv_not_a_real_key"):
        response = await acme.get("/v1/videos", headers={"Authorization": header})
        assert response.status_code == 401


async def test_revoked_key_is_401(client_for, engine):
    from sqlalchemy import select

    from core import apikeys
    from core.repo.tables import api_keys

    acme = await client_for("acme")
    assert (await acme.get("/v1/videos")).status_code == 200
    async with engine.begin() as conn:
        key_id = (
            await conn.execute(select(api_keys.c.id).where(api_keys.c.client_id == "acme"))
        ).scalar_one()
        assert await apikeys.revoke(conn, key_id)
    response = await acme.get("/v1/videos")
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (1.5, "validation_error"),
        ("10", "validation_error"),
        (0, "invalid_grant"),
        (True, "validation_error"),
    ],
)
async def test_non_integer_or_zero_grant_is_refused(admin, assert_ledger, amount, code):
    response = await admin.post("/v1/credits/alice/grants", json={"amount": amount, "reason": "x"})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    await assert_ledger()


@pytest.mark.parametrize("reason", ["", " ", "\u3000 \u00a0", "\t", "\u200b", "\ufeff\u202e"])
async def test_a_grant_without_a_written_reason_is_refused(admin, assert_ledger, reason):
    response = await admin.post("/v1/credits/alice/grants", json={"amount": 5, "reason": reason})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_error"
    await assert_ledger()


async def test_negative_grant_adjusts_but_never_below_zero(admin, assert_ledger):
    await admin.post("/v1/credits/alice/grants", json={"amount": 50, "reason": "top up"})
    down = await admin.post(
        "/v1/credits/alice/grants", json={"amount": -20, "reason": "correction"}
    )
    assert down.json()["balance"] == 30
    refused = await admin.post(
        "/v1/credits/alice/grants", json={"amount": -31, "reason": "too much"}
    )
    assert refused.status_code == 400 and refused.json()["code"] == "invalid_grant"
    assert refused.json()["balance"] == 30
    await assert_ledger()


async def test_client_cannot_grant(client_for):
    acme = await client_for("acme")
    response = await acme.post(
        "/v1/credits/acme/grants", json={"amount": 10, "reason": "free money"}
    )
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


async def test_client_cannot_read_another_clients_users(client_for, grant):
    acme = await client_for("acme")
    await grant("globex", "bob", 70)
    response = await acme.get("/v1/credits/bob", params={"client": "globex"})
    assert response.status_code == 403
    own_view = (await acme.get("/v1/credits/bob")).json()
    assert own_view["balance"] == 0  # acme's bob is not globex's bob


async def test_other_clients_video_is_404_not_403(client_for, grant):
    acme, globex = await client_for("acme"), await client_for("globex")
    await grant("globex", "globex", 100)
    video = (await globex.post("/v1/videos", json={"prompt": PROMPT})).json()
    for method, path in [("GET", ""), ("DELETE", ""), ("POST", "/cancel"), ("GET", "/content")]:
        response = await acme.request(method, f"/v1/videos/{video['id']}{path}")
        assert response.status_code == 404, (method, path)


async def test_unknown_route_and_method_are_problems(client_for):
    acme = await client_for("acme")
    assert (await acme.get("/v1/nothing")).json()["code"] == "not_found"
    assert (await acme.patch("/v1/videos")).json()["code"] == "method_not_allowed"


async def test_bad_list_parameters(client_for):
    acme = await client_for("acme")
    for params, code in [
        ({"limit": 0}, "validation_error"),
        ({"limit": "abc"}, "validation_error"),
        ({"order": "sideways"}, "validation_error"),
        ({"status": "exploded"}, "validation_error"),
        ({"after": "'; drop table"}, "invalid_cursor"),
    ]:
        response = await acme.get("/v1/videos", params=params)
        assert response.status_code == 400 and response.json()["code"] == code, params


async def test_service_disabled_is_503(admin, client_for, grant):
    await admin.put("/v1/admin/config", json={"enabled": False})
    acme = await client_for("acme")
    await grant("acme", "acme", 100)
    response = await acme.post("/v1/videos", json={"prompt": PROMPT})
    assert response.status_code == 503 and response.json()["code"] == "service_disabled"


async def test_admin_config_never_returns_upstream_key(admin):
    await admin.put("/v1/admin/config", json={"upstream_api_key": "sk-very-secret-upstream-key"})
    body = (await admin.get("/v1/admin/config")).json()
    assert "sk-very-secret-upstream-key" not in str(body)
    assert body["upstream_api_key_set"] is True


async def test_admin_config_rejects_bad_values(admin):
    for patch in (
        {"max_concurrent_tasks_per_user": 0},
        {"nonsense": 1},
        {"models": [{"id": "a b"}]},
    ):
        response = await admin.put("/v1/admin/config", json=patch)
        assert response.status_code == 400, patch
