"""The API across a SECRET_KEY rotation, and where the upstream key may go."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from core.callback import token
from schemas.config import RuntimeConfigPatch
from schemas.settings import Settings
from service.app import create_app
from tests.integration.conftest import ADMIN_KEY

OLD = "old-secret-key-0123456789abcdefghij"
NEW = "new-secret-key-0123456789abcdefghij"
UPSTREAM_KEY = "sk-upstream-0123456789WXYZ"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"secret_key": NEW, "secret_key_previous": OLD})


def _admin(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )


async def test_a_callback_token_made_under_the_previous_key_is_accepted(app: Starlette) -> None:
    async with _admin(app) as client:
        for key, status in ((OLD, 202), (NEW, 202), ("another-key-0123456789abcdef", 404)):
            response = await client.post(f"/v1/upstream/callback/{token(key, 'video_1')}")
            assert response.status_code == status, (key, response.text)


async def test_a_key_stored_before_the_rotation_is_still_used(settings: Settings) -> None:
    before = create_app(settings.model_copy(update={"secret_key": OLD, "secret_key_previous": ""}))
    async with before.router.lifespan_context(before), _admin(before) as client:
        await client.put("/v1/admin/config", json={"upstream_api_key": UPSTREAM_KEY})
    after = create_app(settings)
    async with after.router.lifespan_context(after), _admin(after) as client:
        body = (await client.get("/v1/admin/config")).json()
        store = after.state.ctx.config
        assert store.upstream_key(await store.get()) == UPSTREAM_KEY
    assert body["upstream_api_key"] == "****WXYZ" and body["upstream_api_key_set"] is True


@pytest.mark.parametrize(
    ("change", "kept"),
    [
        ({"upstream_base_url": "https://other-gateway.example"}, False),
        ({"upstream_kind": "gateway"}, False),
        ({"upstream_base_url": "http://127.0.0.1:8090"}, True),  # the same URL again
        ({"task_timeout_seconds": 900}, True),
    ],
)
async def test_the_upstream_key_is_cleared_when_its_destination_changes(
    admin: httpx.AsyncClient, change: dict[str, str], kept: bool
) -> None:
    await admin.put(
        "/v1/admin/config",
        json={"upstream_base_url": "http://127.0.0.1:8090", "upstream_api_key": UPSTREAM_KEY},
    )
    body = (await admin.put("/v1/admin/config", json=change)).json()
    assert body["upstream_api_key_set"] is kept
    assert body["upstream_api_key"] == ("****WXYZ" if kept else "")


async def test_a_new_destination_keeps_the_key_given_with_it(admin: httpx.AsyncClient) -> None:
    await admin.put("/v1/admin/config", json={"upstream_api_key": UPSTREAM_KEY})
    body = (
        await admin.put(
            "/v1/admin/config",
            json={
                "upstream_base_url": "https://new.example",
                "upstream_api_key": "sk-new-key-abcd",
            },
        )
    ).json()
    assert body["upstream_api_key_set"] is True and body["upstream_api_key"] == "****"


async def test_a_read_sent_back_keeps_the_key_and_never_stores_the_mask(app: Starlette) -> None:
    async with _admin(app) as admin:
        await admin.put("/v1/admin/config", json={"upstream_api_key": UPSTREAM_KEY})
        shown = (await admin.get("/v1/admin/config")).json()
        assert shown["upstream_api_key"] == "****WXYZ"
        writable = {k: v for k, v in shown.items() if k in RuntimeConfigPatch.model_fields}
        writable = {k: v for k, v in writable.items() if v is not None}
        response = await admin.put("/v1/admin/config", json=writable)
        assert response.status_code == 200, response.text
        store = app.state.ctx.config
        assert store.upstream_key(await store.get()) == UPSTREAM_KEY


async def test_a_key_no_secret_key_decrypts_is_shown_unreadable_not_a_500(
    settings: Settings,
) -> None:
    """A database restored under another SECRET_KEY: the config still reads and writes,
    and its check says the key is unreadable (nothing sent)."""
    from worker.upstream.check import check_connection

    before = create_app(settings.model_copy(update={"secret_key": OLD, "secret_key_previous": ""}))
    async with before.router.lifespan_context(before), _admin(before) as client:
        stored = {
            "upstream_api_key": UPSTREAM_KEY,
            "providers": {"gemini": {"api_key": "sk-gemini-0123456789"}},
        }
        assert (await client.put("/v1/admin/config", json=stored)).status_code == 200
    restored = settings.model_copy(update={"secret_key": NEW, "secret_key_previous": ""})
    after = create_app(restored, upstream_check=check_connection)
    async with after.router.lifespan_context(after), _admin(after) as client:
        shown = await client.get("/v1/admin/config")
        changed = await client.put("/v1/admin/config", json={"default_price": 5})
        checked = await client.post("/v1/admin/config/test", json={})
        gemini = await client.post("/v1/admin/config/test", json={"provider": "gemini"})
    for response in (shown, changed, checked, gemini):
        assert response.status_code == 200, response.text
    body = shown.json()
    assert body["upstream_api_key"] == "****" and body["upstream_api_key_set"] is True
    assert body["upstream_api_key_unreadable"] is True
    assert body["providers"]["gemini"]["api_key_unreadable"] is True
    assert changed.json()["default_price"] == 5
    for answer in (checked.json(), gemini.json()):
        assert answer["result"] == "key_unreadable" and answer["ok"] is False
