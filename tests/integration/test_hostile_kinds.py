"""The kinds of hostile input found to answer 500 (issue 10), each tried in several
forms, on PostgreSQL and on SQLite: a 4xx problem+json with a stable code, an
X-Request-ID, the ledger sound and nothing held afterwards."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette

from core.repo.tables import tasks, webhook_endpoints
from service.body import MAX_JSON_VALUES
from tests.integration.conftest import BACKENDS
from tests.integration.images import PNG, PNG_URI

PROMPT = "a lighthouse in a storm"
SUPERSCRIPT_TWO = "\u00b2"  # str.isdigit() is True, int() refuses it
ARABIC_THREE = "\u0663"  # int() accepts it; we do not
FULLWIDTH_ONE = "\uff11"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def unchanged(acme: httpx.AsyncClient, assert_ledger: Any, engine: Any) -> Any:
    """``await unchanged()``: the ledger is sound, acme still has 1000 and holds nothing,
    and no task was written."""

    async def check() -> None:
        credits = (await acme.get("/v1/credits/acme")).json()
        assert (credits["balance"], credits["held"]) == (1000, 0), credits
        async with engine.connect() as conn:
            assert (await conn.execute(select(tasks.c.id))).all() == []
        await assert_ledger()

    return check


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers.get("x-request-id")
    problem: dict[str, Any] = response.json()
    assert (problem["status"], problem["code"]) == (status, code), problem
    assert problem["detail"] and problem["error"]["code"] == code
    return problem


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def nested_object(depth: int) -> str:
    return '{"a":' * depth + '"x"' + "}" * depth


# --- deep JSON, anywhere -------------------------------------------------------------

JSON_ENDPOINTS = [
    ("POST", "/v1/videos"),
    ("POST", "/v1/webhook-endpoints"),
]
ADMIN_JSON_ENDPOINTS = [("PUT", "/v1/admin/config"), ("POST", "/v1/credits/bob/grants")]


@pytest.mark.parametrize("depth", [33, 1_025, 10_000, 100_000])
async def test_deep_json_body_is_invalid_json_everywhere(acme, admin, unchanged, depth):
    body = nested(depth).encode()
    headers = {"content-type": "application/json"}
    # Endpoints with small bodies refuse the largest by size first; every endpoint
    # refuses more than MAX_JSON_VALUES arrays before parsing them.
    small = len(body) > 64 * 1024
    many = depth > MAX_JSON_VALUES
    for method, path in JSON_ENDPOINTS:
        response = await acme.request(method, path, content=body, headers=headers)
        if many or (small and path != "/v1/videos"):
            assert_problem(response, 413, "body_too_large")
        else:
            assert_problem(response, 400, "invalid_json")
    for method, path in ADMIN_JSON_ENDPOINTS:
        response = await admin.request(method, path, content=body, headers=headers)
        if many or (small and "grants" in path):
            assert_problem(response, 413, "body_too_large")
        else:
            assert_problem(response, 400, "invalid_json")
    await unchanged()


@pytest.mark.parametrize("depth", [40, 2_000, 49_000])
async def test_deep_metadata_is_refused(acme, unchanged, depth):
    body = f'{{"prompt": "{PROMPT}", "metadata": {nested_object(depth)}}}'
    response = await acme.post(
        "/v1/videos", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "invalid_json")
    shallow = {"prompt": PROMPT, "metadata": {"k": {"nested": "x"}}}
    assert_problem(await acme.post("/v1/videos", json=shallow), 400, "invalid_metadata")
    await unchanged()


@pytest.mark.parametrize("depth", [40, 5_000, 50_000])
async def test_deep_multipart_metadata_is_refused(acme, unchanged, depth):
    response = await post_form(acme, {"prompt": PROMPT, "metadata": nested_object(depth)})
    assert_problem(response, 400, "invalid_metadata")
    await unchanged()


async def post_form(
    client: httpx.AsyncClient, fields: dict[str, str], files: dict[str, bytes] | None = None
) -> httpx.Response:
    """A multipart create with exactly these fields (httpx alone sends multipart only when
    there is a file, and refuses some of the values we send)."""
    content_type, body = _multipart(fields, files or {})
    return await client.post("/v1/videos", content=body, headers={"content-type": content_type})


async def test_deep_json_in_a_config_model_list_is_refused(admin):
    deep = '{"models": [{"id": "m", "image_roles": ' + nested(2_000, '"x"') + "}]}"
    response = await admin.put(
        "/v1/admin/config", content=deep, headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "invalid_json")


@pytest.mark.parametrize(
    "raw",
    [b'{"prompt": "\\ud800"}', b'{"prompt": "\xff"}', b'{"prompt": NaN}', b'{"seed": 1e400}'],
)
async def test_json_that_is_not_json_is_invalid_json(acme, unchanged, raw):
    response = await acme.post(
        "/v1/videos", content=raw, headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "invalid_json")
    await unchanged()


# --- integers written with other digits ------------------------------------------------

ODD_NUMBERS = [SUPERSCRIPT_TWO, ARABIC_THREE, FULLWIDTH_ONE, "1_0", " 5", "5 ", "+5", "0x10", ""]


@pytest.mark.parametrize("raw", ODD_NUMBERS)
async def test_query_integers_are_ascii_digits_only(acme, admin, unchanged, raw):
    for path, name, code in [
        ("/v1/videos", "limit", "validation_error"),
        ("/v1/events", "limit", "validation_error"),
        ("/v1/credits/acme", "limit", "validation_error"),
        ("/v1/credits/acme", "before", "invalid_cursor"),
    ]:
        assert_problem(await acme.get(path, params={name: raw}), 400, code)
    await unchanged()


@pytest.mark.parametrize("raw", ODD_NUMBERS)
async def test_form_integers_are_ascii_digits_only(acme, unchanged, raw):
    response = await post_form(acme, {"prompt": PROMPT, "seed": raw})
    assert_problem(response, 400, "validation_error")
    response = await acme.post("/v1/videos", json={"prompt": PROMPT, "seed": raw})
    assert_problem(response, 400, "validation_error")
    await unchanged()


async def test_ascii_integers_still_work(acme):
    assert (await acme.get("/v1/videos", params={"limit": "5"})).status_code == 200
    response = await post_form(acme, {"prompt": PROMPT, "seed": "42"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"


# --- what both databases can store -----------------------------------------------------

INT32_MAX = 2**31 - 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"prompt": "nul \x00 in the prompt"}, "invalid_prompt"),
        ({"prompt": PROMPT, "metadata": {"k": "nul\x00"}}, "invalid_metadata"),
        ({"prompt": PROMPT, "metadata": {"k\x00": "v"}}, "invalid_metadata"),
        ({"prompt": PROMPT, "metadata": {"line\nbreak": "v"}}, "invalid_metadata"),
        ({"prompt": PROMPT, "user": "alice\x00"}, "validation_error"),
        ({"prompt": PROMPT, "user": "alice\n"}, "validation_error"),
        ({"prompt": PROMPT, "webhook_url": "https://x.example/\x00"}, "validation_error"),
        ({"prompt": PROMPT, "webhook_url": "not a url"}, "validation_error"),
        ({"prompt": PROMPT, "webhook_url": "http://"}, "validation_error"),
        ({"prompt": PROMPT, "webhook_url": "https://x.example:99999/"}, "validation_error"),
        (
            {"prompt": PROMPT, "model": "veo3-pro-frames", "images": ["https://x/\x00"]},
            "invalid_image",
        ),
        ({"prompt": PROMPT, "seed": INT32_MAX + 1}, "validation_error"),
        ({"prompt": PROMPT, "seed": 2**63}, "validation_error"),
        ({"prompt": PROMPT, "seed": 10**30}, "validation_error"),
        ({"prompt": PROMPT, "model": ""}, "unknown_model"),
        ({"prompt": PROMPT, "model": "veo3\x00"}, "unknown_model"),
        ({"prompt": PROMPT, "model": None, "user": ""}, "validation_error"),
    ],
)
async def test_unstorable_create_values_are_refused(acme, unchanged, body, code):
    assert_problem(await acme.post("/v1/videos", json=body), 400, code)
    await unchanged()


async def test_multipart_values_follow_the_same_rules(acme, unchanged):
    for fields, code in [
        ({"prompt": "nul\x00"}, "invalid_prompt"),
        ({"prompt": PROMPT, "model": ""}, "unknown_model"),
        ({"prompt": PROMPT, "metadata[k]": "nul\x00"}, "invalid_metadata"),
        ({"prompt": PROMPT, "metadata": '{"k": "nul\\u0000"}'}, "invalid_metadata"),
        ({"prompt": PROMPT, "metadata": "[1]"}, "invalid_metadata"),
        ({"prompt": PROMPT, "user": "alice\n"}, "validation_error"),
    ]:
        response = await post_form(acme, fields)
        assert_problem(response, 400, code)
    await unchanged()


@pytest.mark.parametrize(
    "user", ["alice\n", "alice%0A", "al ice", "alice\x00", "x" * 201, "\u00e9", "a/b"]
)
async def test_one_user_name_rule_in_path_body_and_query(admin, acme, unchanged, user):
    path_user = user if "%" in user else quote(user, safe="")
    grant = await admin.post(f"/v1/credits/{path_user}/grants", json={"amount": 10, "reason": "x"})
    assert grant.status_code in (400, 404), grant.text
    assert grant.headers["content-type"] == "application/problem+json"
    assert_problem(
        await acme.post("/v1/videos", json={"prompt": PROMPT, "user": user}),
        400,
        "validation_error",
    )
    assert_problem(await acme.get("/v1/videos", params={"user": user}), 400, "validation_error")
    await unchanged()


async def test_grant_to_a_newline_user_creates_no_account(admin, engine):
    from core.repo.tables import accounts

    response = await admin.post("/v1/credits/alice%0A/grants", json={"amount": 10, "reason": "x"})
    assert_problem(response, 400, "validation_error")
    async with engine.connect() as conn:
        users = (await conn.execute(select(accounts.c.user))).scalars().all()
    assert "alice\n" not in users


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": 10, "reason": "nul\x00"}, "validation_error"),
        ({"amount": 10, "reason": "two\nlines"}, "validation_error"),
        ({"amount": INT32_MAX, "reason": "x"}, "validation_error"),
        ({"amount": 2**40, "reason": "x"}, "validation_error"),
    ],
)
async def test_unstorable_grants_are_refused(admin, assert_ledger, body, code):
    assert_problem(await admin.post("/v1/credits/bob/grants", json=body), 400, code)
    await assert_ledger()


async def test_balance_never_passes_what_an_integer_column_holds(admin, assert_ledger):
    for _ in range(2):
        ok = await admin.post("/v1/credits/bob/grants", json={"amount": 10**9, "reason": "x"})
        assert ok.status_code == 200, ok.text
    third = await admin.post("/v1/credits/bob/grants", json={"amount": 10**9, "reason": "x"})
    problem = assert_problem(third, 400, "invalid_grant")
    assert problem["balance"] == 2 * 10**9
    credits = (await admin.get("/v1/credits/bob")).json()
    assert credits["balance"] == 2 * 10**9
    await assert_ledger()


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"before": str(INT32_MAX + 1)}, "invalid_cursor"),
        ({"before": "9" * 18}, "invalid_cursor"),
        ({"before": "0"}, "invalid_cursor"),
        ({"client": "acme\x00"}, "validation_error"),
        ({"client": "acme\n"}, "validation_error"),
    ],
)
async def test_unstorable_credit_queries_are_refused(admin, params, code):
    assert_problem(await admin.get("/v1/credits/bob", params=params), 400, code)


@pytest.mark.parametrize("cursor", ["video_\x00", "video_zz", "evt_1", "video_" + "a" * 70, "'"])
async def test_unstorable_cursors_are_refused(acme, cursor):
    assert_problem(await acme.get("/v1/videos", params={"after": cursor}), 400, "invalid_cursor")
    if not cursor.startswith("evt_1"):
        response = await acme.get("/v1/events", params={"after": cursor})
        assert_problem(response, 400, "invalid_cursor")


@pytest.mark.parametrize(
    "video_id", ["video_%00", "video_%C3%A9", "%C2%B2", "video_" + "0" * 100, "x" * 3000]
)
async def test_odd_path_ids_are_404(acme, video_id):
    for method, suffix in [("GET", ""), ("DELETE", ""), ("POST", "/cancel"), ("GET", "/content")]:
        response = await acme.request(method, f"/v1/videos/{video_id}{suffix}")
        assert_problem(response, 404, "not_found")
    for method, path in [
        ("GET", f"/v1/events/{video_id}"),
        ("POST", f"/v1/events/{video_id}/replay"),
        ("GET", f"/v1/webhook-endpoints/{video_id}"),
        ("DELETE", f"/v1/webhook-endpoints/{video_id}"),
        ("POST", f"/v1/webhook-endpoints/{video_id}/rotate-secret"),
    ]:
        assert_problem(await acme.request(method, path), 404, "not_found")


async def test_idempotency_keys_are_printable_ascii(acme, unchanged):
    for key in [b"", b"k" * 256, "caf\u00e9".encode("latin-1"), b"tab\tkey", b"nul\x00"]:
        response = await acme.post(
            "/v1/videos", json={"prompt": PROMPT}, headers={"Idempotency-Key": key}
        )
        assert_problem(response, 400, "invalid_idempotency_key")
    await unchanged()


# --- unauthenticated paths -------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "%C3%A9.abc",
        "%C3%A9." + "0" * 32,
        "video_1.%C2%B2" + "0" * 31,
        "x%00." + "0" * 32,
        "video_1." + "0" * 32,
        "." + "0" * 32,
        "a" * 5000,
        "%F0%9F%92%A9",
    ],
)
async def test_callback_with_any_token_is_404_without_auth(app: Starlette, token):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as anon:
        response = await anon.post(f"/v1/upstream/callback/{token}", content=b"{}")
    assert_problem(response, 404, "not_found")


async def test_unauthenticated_paths_never_fail(app: Starlette):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as anon:
        for path in ["/healthz", "/readyz", "/openapi.json", "/docs"]:
            assert (await anon.get(path)).status_code == 200, path
        for header in [b"Bearer \xe9", b"Bearer " + b"x" * 10_000, b"Bearer a\x00b", b"\xe9"]:
            response = await anon.get("/v1/videos", headers={"Authorization": header})
            assert_problem(response, 401, "unauthorized")
        weird_ids = [b"\xe9", b"a" * 65, b"a b", b"x\x01"]
        for request_id in weird_ids:
            response = await anon.get("/healthz", headers={"X-Request-ID": request_id})
            assert response.headers["x-request-id"].encode() != request_id
        response = await anon.get("/healthz", headers={"X-Request-ID": "trace-1234"})
        assert response.headers["x-request-id"] == "trace-1234"


# --- webhook endpoint patches ----------------------------------------------------------


@pytest.mark.parametrize("field", ["url", "enabled_events", "description", "enabled"])
async def test_patch_with_null_is_400_and_saves_nothing(acme, field):
    created = await acme.post(
        "/v1/webhook-endpoints",
        json={"url": "https://127.0.0.1/a", "enabled_events": ["video.completed"]},
    )
    endpoint = created.json()
    body: dict[str, Any] = {"description": "changed"} if field != "description" else {}
    body[field] = None
    patched = await acme.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json=body)
    problem = assert_problem(patched, 400, "validation_error")
    assert field in problem["detail"]
    after = await acme.get(f"/v1/webhook-endpoints/{endpoint['id']}")
    assert after.status_code == 200
    assert after.json()["description"] == "" and after.json()["enabled_events"] == [
        "video.completed"
    ]
    assert (await acme.get("/v1/webhook-endpoints")).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"url": "not a url"},
        {"url": "https://x/\x00"},
        {"description": "nul\x00"},
        {"enabled_events": ["video.exploded"]},
        {"enabled": "maybe"},
        {"unknown": 1},
    ],
)
async def test_patch_with_bad_values_is_400(acme, body):
    endpoint = (
        await acme.post("/v1/webhook-endpoints", json={"url": "https://127.0.0.1/a"})
    ).json()
    response = await acme.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json=body)
    assert_problem(response, 400, "validation_error")


async def test_endpoint_reads_survive_whatever_is_stored(acme, engine):
    endpoint = (
        await acme.post("/v1/webhook-endpoints", json={"url": "https://127.0.0.1/a"})
    ).json()
    async with engine.begin() as conn:  # what the earlier version saved before its 500
        await conn.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == endpoint["id"])
            .values(enabled_events=None, description="")
        )
    listed = await acme.get("/v1/webhook-endpoints")
    assert listed.status_code == 200 and listed.json()["data"][0]["enabled_events"] == []
    one = await acme.get(f"/v1/webhook-endpoints/{endpoint['id']}")
    assert one.status_code == 200
    rotated = await acme.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
    assert rotated.status_code == 200 and rotated.json()["secret"].startswith("whsec_")
    fixed = await acme.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled_events": ["video.failed"]}
    )
    assert fixed.json()["enabled_events"] == ["video.failed"]


# --- multipart without a length --------------------------------------------------------


def _multipart(fields: dict[str, str], files: dict[str, bytes]) -> tuple[str, bytes]:
    boundary = "hostile-boundary-7"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    for name, data in files.items():
        parts.append(
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}";'
                f' filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


async def _chunks(body: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_chunked_multipart_create_works(acme, assert_ledger):
    content_type, body = _multipart(
        {"prompt": PROMPT, "model": "veo3-pro-frames", "seed": "7"}, {"input_reference": PNG}
    )
    response = await acme.post(
        "/v1/videos", content=_chunks(body), headers={"content-type": content_type}
    )
    assert response.status_code == 200, response.text
    video = response.json()
    assert video["task_type"] == "image_to_video" and len(video["images"]) == 1
    assert (await acme.get("/v1/credits/acme")).json()["held"] == 200
    await assert_ledger()


async def test_chunked_multipart_over_the_limit_is_413(acme, unchanged, settings):
    content_type, body = _multipart(
        {"prompt": PROMPT, "images": PNG_URI + "A" * settings.max_body_bytes}, {}
    )
    response = await acme.post(
        "/v1/videos", content=_chunks(body, 1 << 20), headers={"content-type": content_type}
    )
    assert_problem(response, 413, "body_too_large")
    await unchanged()


# --- the HTTP layer --------------------------------------------------------------------


async def test_405_lists_every_method_of_the_path(acme):
    for method, path, allowed in [
        ("PATCH", "/v1/videos", {"GET", "POST", "HEAD"}),
        ("PUT", "/v1/videos/video_0123", {"GET", "DELETE", "HEAD"}),
        ("DELETE", "/v1/admin/config", {"GET", "PUT", "HEAD"}),
        ("GET", "/v1/upstream/callback/x.y", {"POST"}),
        ("FROBNICATE", "/v1/models", {"GET", "HEAD"}),
    ]:
        response = await acme.request(method, path)
        assert_problem(response, 405, "method_not_allowed")
        assert {m.strip() for m in response.headers["allow"].split(",")} == allowed, path


@pytest.mark.parametrize(
    "path",
    ["/v1/nothing", "/v1", "/v1/videos/a/b/c", "/%00", "/v1/%C3%A9", "//v1/videos", "/v1/videos/"],
)
async def test_unknown_paths_are_404_problems(acme, path):
    assert_problem(await acme.get(path), 404, "not_found")


def raw_create_scope(authorization: str, content_length: int) -> dict[str, Any]:
    """The ASGI scope of a JSON ``POST /v1/videos`` with ``authorization`` and a
    ``Content-Length``, for a test that plays the client's side of the body itself."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/videos",
        "raw_path": b"/v1/videos",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", authorization.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(content_length).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


async def test_client_disconnect_mid_body_is_one_quiet_line(app: Starlette, acme):
    from structlog.testing import capture_logs

    key = acme.headers["authorization"]
    messages = [
        {"type": "http.request", "body": b'{"prompt": "a li', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {**raw_create_scope(key, 1000), "state": {}}
    with capture_logs() as logs:
        await app(scope, receive, send)
    events = [entry["event"] for entry in logs]
    assert events == ["http_request"] and logs[0]["status"] == 499, logs
    assert not [m for m in sent if m["type"] == "http.response.start" and m["status"] >= 500]


async def test_request_id_is_echoed_on_problems(acme):
    response = await acme.get("/v1/nothing", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert json.loads(response.text)["code"] == "not_found"


# --- admin configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    "patch",
    [
        {"default_text_model": "nope"},
        {"default_text_model": "veo3-pro-frames-nope"},
        {"default_image_model": "veo3"},
        {"default_text_model": ""},
        {"default_text_model": None},
        {"upstream_base_url": "not a url"},
        {"upstream_base_url": "ftp://files.example"},
        {"upstream_base_url": "http://"},
        {"upstream_base_url": "http://up.example:99999"},
        {"upstream_base_url": "http://up.example/\x00"},
        {"upstream_base_url": None},
        {"upstream_api_key": "nul\x00"},
        {"models": [{"id": "veo3"}, {"id": "veo3"}]},
        {"models": []},
        {"models": [{"id": "only-images", "text_to_video": False, "max_images": 0}]},
        {"models": [{"id": "veo3", "max_images": 1, "image_roles": ["first_frame"] * 2}]},
        {"models": [{"id": "veo3", "aspect_ratios": ["4:0"]}]},
        {"models": [{"id": "veo3", "durations": [8, 8]}]},
        {"models": [{"id": "a b"}]},
        {"models": [{"id": "veo3", "price": 2**31}]},
        {"default_price": 2**31},
        {"default_price": -1},
        {"enabled": None},
        {"max_concurrent_tasks_per_user": SUPERSCRIPT_TWO},
    ],
)
async def test_admin_config_refuses_what_cannot_work(admin, patch):
    before = (await admin.get("/v1/admin/config")).json()
    assert_problem(await admin.put("/v1/admin/config", json=patch), 400, "validation_error")
    assert (await admin.get("/v1/admin/config")).json() == before


async def test_admin_config_accepts_a_coherent_change(admin):
    models = [
        {"id": "t2v", "durations": [8], "aspect_ratios": ["16:9"], "resolutions": ["720p"]},
        {"id": "i2v", "max_images": 1, "image_roles": ["first_frame"]},
    ]
    response = await admin.put(
        "/v1/admin/config",
        json={
            "models": models,
            "default_text_model": "t2v",
            "default_image_model": "i2v",
            "upstream_base_url": "https://gateway.example/v1",
            "upstream_api_key": "",
        },
    )
    assert response.status_code == 200, response.text
    assert [m["id"] for m in response.json()["models"]] == ["t2v", "i2v"]


# --- wide bodies: one clear error, not thousands ---------------------------------------


async def test_a_wide_body_is_one_short_problem(acme, admin, unchanged):
    wide = {"prompt": PROMPT, "metadata": {str(i): "v" for i in range(40_000)}}
    problem = assert_problem(await acme.post("/v1/videos", json=wide), 400, "invalid_metadata")
    assert len(problem["errors"]) == 1 and len(problem["detail"]) < 500
    many_errors = {"prompt": PROMPT, "metadata": {"k": "v"}, **{f"x{i}": 1 for i in range(5000)}}
    problem = assert_problem(
        await acme.post("/v1/videos", json=many_errors), 400, "validation_error"
    )
    assert len(problem["errors"]) <= 21 and problem["errors"][-1]["message"].startswith("and ")
    config = {"models": [{"id": "m", "durations": list(range(1, 40_000))}]}
    assert_problem(await admin.put("/v1/admin/config", json=config), 400, "validation_error")
    wider = {"prompt": PROMPT, "metadata": {str(i): "v" for i in range(MAX_JSON_VALUES)}}
    problem = assert_problem(await acme.post("/v1/videos", json=wider), 413, "body_too_large")
    assert str(MAX_JSON_VALUES) in problem["detail"]
    await unchanged()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--x\r\n\r\n"),
        ("multipart/form-data; boundary=", b"garbage"),
        ("multipart/form-data; boundary=abc", b"no parts at all"),
        (
            "multipart/form-data; boundary=abc",
            b"--abc\r\nContent-Disposition: form-data\r\n\r\nx\r\n--abc--\r\n",
        ),
        ("multipart/form-data; boundary=abc; charset=utf-16", b"--abc\r\n\xff\xfe\r\n--abc--"),
    ],
)
async def test_malformed_multipart_is_a_400(acme, unchanged, content_type, body):
    response = await acme.post("/v1/videos", content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] in ("validation_error", "invalid_prompt")
    await unchanged()
