"""/v1/admin/keys: the rules of `google-video keys` over HTTP, the secret shown once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.integration.conftest import _client


async def _create(admin: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await admin.post("/v1/admin/keys", json=body)


async def test_create_use_list_revoke(admin: httpx.AsyncClient, app: Starlette) -> None:
    created = await _create(admin, name="acme")
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["object"] == "api_key" and key["role"] == "client" and key["client"] == "acme"
    assert key["key"].startswith("gv_") and key["prefix"] == key["key"][:10]
    async with _client(app, key["key"]) as acme:
        assert (await acme.get("/v1/credits/acme")).status_code == 200
        assert (await acme.get("/v1/admin/keys")).status_code == 403

        listed = (await admin.get("/v1/admin/keys")).json()["data"]
        mine = next(k for k in listed if k["id"] == key["id"])
        assert "key" not in mine and mine["last_used_at"] is not None
        assert all("key" not in k for k in listed)

        revoked = await admin.delete(f"/v1/admin/keys/{key['id']}")
        assert revoked.json() == {"id": key["id"], "object": "api_key.revoked", "revoked": True}
        assert (await acme.get("/v1/credits/acme")).status_code == 401
    again = await admin.delete(f"/v1/admin/keys/{key['id']}")
    assert again.status_code == 404 and again.json()["code"] == "not_found"
    active = (await admin.get("/v1/admin/keys", params={"include_revoked": "false"})).json()
    assert key["id"] not in {k["id"] for k in active["data"]}


async def test_a_revoked_key_is_refused_at_once_despite_the_cache(
    admin: httpx.AsyncClient, app: Starlette
) -> None:
    app.state.ctx.keys.ttl = 60.0  # the production memo: revoking must drop it
    key = (await _create(admin, name="cached")).json()
    async with _client(app, key["key"]) as client:
        assert (await client.get("/v1/videos")).status_code == 200
        await admin.delete(f"/v1/admin/keys/{key['id']}")
        assert (await client.get("/v1/videos")).status_code == 401


async def test_admin_keys_act_for_admin_and_client_keys_join_only_when_asked(
    admin: httpx.AsyncClient,
) -> None:
    ops = (await _create(admin, name="ops", role="admin")).json()
    assert (ops["role"], ops["client"]) == ("admin", "admin")
    await _create(admin, name="globex")
    twice = await _create(admin, name="globex")
    assert twice.status_code == 400 and '{"client": "globex"}' in twice.json()["detail"]
    joined = await _create(admin, name="globex-billing", client="globex")
    assert joined.status_code == 201 and joined.json()["client"] == "globex"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "admin"},  # a reserved client id
        {"name": "x", "client": "System"},
        {"name": "x", "role": "admin", "client": "acme"},
        {"name": "bootstrap", "client": "acme"},
        {"name": "two words"},  # a new client's id is the name
        {"name": "x" * 101, "client": "acme"},
        {"name": "x", "role": "root"},
        {"name": "x", "extra": 1},
        {},
    ],
)
async def test_refused_keys_are_problems(admin: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await _create(admin, **body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"


async def test_malformed_or_unknown_key_id_is_404(admin: httpx.AsyncClient) -> None:
    for key_id in ("nope", "key_" + "0" * 32, "key_xyz"):
        response = await admin.delete(f"/v1/admin/keys/{key_id}")
        assert response.status_code == 404 and response.json()["code"] == "not_found"
