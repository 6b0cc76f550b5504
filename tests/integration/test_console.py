"""The operator console in-process (no browser): login and session, the security
headers, hostile input rendered as text and forged posts refused on both databases,
bad query parameters answered with problem pages."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from core import apikeys, settlement
from core.repo import tasks
from schemas.settings import Settings
from schemas.status import Role, TaskStatus
from service.app import create_app
from service.console import ROUTES, session
from service.console.media import Unsatisfiable, byte_range
from service.console.security import origin_of
from tests.integration.conftest import ADMIN_KEY, BACKENDS
from tests.services import s3_client

XSS = "<script>alert(1)</script>"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _browser(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, html
    return found.group(1)


async def login(browser: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await browser.get("/console/login")
    return await browser.post("/console/login", data={"csrf": csrf_of(form.text), "key": key})


@pytest.fixture
async def console(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with _browser(app) as browser:
        answer = await login(browser, ADMIN_KEY)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/console/videos"
        yield browser


def assert_secured(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_session_cookie_holds_no_key_and_every_page_is_secured(
    console: httpx.AsyncClient,
) -> None:
    cookies = [c for c in console.cookies.jar if c.name == "gv_console"]
    assert len(cookies) == 1
    cookie = cookies[0]
    assert cookie.value is not None and ADMIN_KEY not in cookie.value
    assert cookie.path == "/console"
    assert cookie.expires is None  # a browser-session cookie
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "Strict"
    for path in ("/console/videos", "/console/credits", "/console/config", "/console/health"):
        page = await console.get(path)
        assert page.status_code == 200, (path, page.text)
        assert_secured(page)
    assert_secured(await console.get("/console/static/console.css"))
    assert_secured(await console.get("/console/nowhere"))


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_client_key_an_unknown_key_and_a_revoked_key_do_not_get_in(
    app: Starlette, client_for: Any, engine: AsyncEngine
) -> None:
    acme = await client_for("acme")
    async with _browser(app) as browser:
        refused = await login(browser, acme.api_key)
        assert refused.status_code == 403
        assert "admin key" in refused.text
        assert (await browser.get("/console/videos")).headers["location"] == "/console/login"
        unknown = await login(browser, "gv_not_a_key")
        assert unknown.status_code == 401
    async with engine.begin() as conn:
        key_id, key = await apikeys.create_key(
            conn, client_id=apikeys.ADMIN_CLIENT, name="ops", role=Role.ADMIN
        )
    async with _browser(app) as browser:
        assert (await login(browser, key)).status_code == 303
        assert (await browser.get("/console/videos")).status_code == 200
        async with engine.begin() as conn:
            await apikeys.revoke(conn, key_id)
        back = await browser.get("/console/videos")
        assert back.status_code == 303
        assert back.headers["location"] == "/console/login"


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_failed_logins_are_limited_per_address(app: Starlette, admin: Any) -> None:
    await admin.put("/v1/admin/config", json={"failed_auth_per_minute_per_address": 2})
    async with _browser(app) as browser:
        answers = [(await login(browser, f"gv_wrong_{n}")).status_code for n in range(3)]
    assert answers == [401, 401, 429]


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_tampered_cookie_is_no_session(app: Starlette, console: httpx.AsyncClient) -> None:
    value = console.cookies["gv_console"]
    assert (await _with_cookie(app, value)).status_code == 200
    assert (await _with_cookie(app, value[:-2] + "xx")).status_code == 303


async def _with_cookie(app: Starlette, value: str) -> httpx.Response:
    """``/console/videos`` from a client holding only this cookie."""
    async with _browser(app) as browser:
        return await browser.get("/console/videos", headers={"Cookie": f"gv_console={value}"})


async def test_a_hostile_prompt_renders_as_text(
    console: httpx.AsyncClient, acme: httpx.AsyncClient
) -> None:
    created = await acme.post("/v1/videos", json={"prompt": XSS, "metadata": {"k": XSS}})
    assert created.status_code == 200, created.text
    video_id = created.json()["id"]
    listing = await console.get("/console/videos", params={"user": "acme"})
    page = await console.get(f"/console/videos/{video_id}")
    for html in (listing.text, page.text):
        assert XSS not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert video_id in listing.text


async def test_a_forged_post_changes_nothing(
    console: httpx.AsyncClient, acme: httpx.AsyncClient
) -> None:
    video_id = (await acme.post("/v1/videos", json={"prompt": "a cat"})).json()["id"]
    before = (await acme.get("/v1/credits/acme")).json()
    page = await console.get(f"/console/videos/{video_id}")
    token = csrf_of(page.text)
    url = f"/console/videos/{video_id}/cancel"
    forged = [
        await console.post(url, data={}),
        await console.post(url, data={"csrf": "wrong"}),
        await console.post(url, data={"csrf": token}, headers={"Origin": "http://evil.example"}),
        await console.post(url, data={"csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}),
        await console.post(url, data={"csrf": token}, headers={"Origin": "null"}),
    ]
    for answer in forged:
        assert answer.status_code == 403, answer.text
        assert "text/html" in answer.headers["content-type"]
        assert_secured(answer)
    assert (await acme.get(f"/v1/videos/{video_id}")).json()["status"] == "queued"
    assert (await acme.get("/v1/credits/acme")).json() == before
    honest = await console.post(url, data={"csrf": token})
    assert honest.status_code == 303
    assert (await acme.get(f"/v1/videos/{video_id}")).json()["status"] == "failed"


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_every_post_route_wants_the_token(console: httpx.AsyncClient) -> None:
    posts = [
        r.path.replace("{video_id}", "video_0000000000000000000000000000")
        for r in ROUTES
        if isinstance(r, Route) and r.methods and "POST" in r.methods
    ]
    assert len(posts) >= 6
    for path in posts:
        answer = await console.post(f"/console{path}", data={"csrf": "wrong", "key": "x"})
        assert answer.status_code == 403, (path, answer.text)
    assert not any(isinstance(r, Mount) and r.path != "/static" for r in ROUTES)


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize(
    "path",
    [
        "/console/videos?limit=abc",
        "/console/videos?status=bogus",
        "/console/videos?created_from=yesterday",
        "/console/videos?user=%00",
        "/console/videos?before=nope",
        "/console/credits?client=acme&user=a%0Ab",
        "/console/credits?client=acme&user=acme&before=-1",
        "/console/videos/not-an-id",
        "/console/videos/video_0000000000000000000000000000/media",
    ],
)
async def test_bad_parameters_are_problem_pages(console: httpx.AsyncClient, path: str) -> None:
    answer = await console.get(path)
    assert 400 <= answer.status_code < 500, answer.text
    assert "text/html" in answer.headers["content-type"]
    assert_secured(answer)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("created_from=9999-12-31T23:59:59-14:00", "9999-12-31T23:59"),
        ("created_to=0001-01-01T00:00:00%2B14:00", "0001-01-01T00:00"),
    ],
)
async def test_an_offset_past_the_calendar_end_reads_as_that_end(
    console: httpx.AsyncClient, query: str, shown: str
) -> None:
    answer = await console.get(f"/console/videos?{query}")
    assert answer.status_code == 200, answer.text
    assert f'value="{shown}"' in answer.text
    assert_secured(answer)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_wrong_method_says_which_are_allowed(console: httpx.AsyncClient) -> None:
    """A 405 names the route's methods (``Allow``, RFC 9110 15.5.6), as a page."""
    answer = await console.request("OPTIONS", "/console/credits/grant")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert_secured(answer)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_login_form_keeps_a_live_session(console: httpx.AsyncClient) -> None:
    """Opening the login form (a link from anywhere) while logged in does not replace the
    session with a visitor's: it goes to the videos."""
    form = await console.get("/console/login")
    assert form.status_code == 303 and form.headers["location"] == "/console/videos"
    assert (await console.get("/console/videos")).status_code == 200


async def test_a_grant_form_posted_twice_grants_once(console: httpx.AsyncClient) -> None:
    """A double click (or a resent POST) on one rendering of the form is one grant; a
    refused post frees the form to be corrected."""
    page = await console.get("/console/credits", params={"client": "acme", "user": "dup"})
    once = re.search(r'name="once" value="([^"]+)"', page.text)
    assert once is not None
    form = {"csrf": csrf_of(page.text), "client": "acme", "user": "dup", "once": once[1]}
    refused = await console.post("/console/credits/grant", data={**form, "amount": "x"})
    assert refused.status_code == 400
    for _ in range(2):
        posted = await console.post(
            "/console/credits/grant", data={**form, "amount": "50", "reason": "trial"}
        )
        assert posted.status_code == 303, posted.text
    account = await console.get(posted.headers["location"])
    assert '<dd id="balance">50</dd>' in account.text


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_grant_and_config_forms_validate_as_the_api(console: httpx.AsyncClient) -> None:
    page = await console.get("/console/credits", params={"client": "acme", "user": "bob"})
    token = csrf_of(page.text)
    missing = await console.post(
        "/console/credits/grant",
        data={"csrf": token, "client": "acme", "user": "bob", "amount": "50", "reason": ""},
    )
    assert missing.status_code == 400
    assert 'id="error-reason"' in missing.text
    granted = await console.post(
        "/console/credits/grant",
        data={"csrf": token, "client": "acme", "user": "bob", "amount": "50", "reason": "trial"},
    )
    assert granted.status_code == 303, granted.text
    account = await console.get(granted.headers["location"])
    assert '<dd id="balance">50</dd>' in account.text
    config = await console.get("/console/config")
    bad = await console.post(
        "/console/config",
        data={"csrf": csrf_of(config.text), "task_timeout_seconds": "1", "price.veo3": "-5"},
    )
    assert bad.status_code == 400
    assert 'id="error-task_timeout_seconds"' in bad.text
    assert 'id="error-price-veo3"' in bad.text


def test_ranges() -> None:
    assert byte_range(None, 100) is None
    assert byte_range("bytes=0-", 100) == (0, 99)
    assert byte_range("bytes=10-19", 100) == (10, 19)
    assert byte_range("bytes=90-200", 100) == (90, 99)
    assert byte_range("bytes=-10", 100) == (90, 99)
    with pytest.raises(Unsatisfiable):
        byte_range("bytes=100-", 100)
    assert byte_range("bytes=0-1,5-6", 100) is None
    # RFC 9110 14.1.1: a range whose last byte is before its first is invalid, so the
    # header is ignored (the whole file), not answered 416.
    assert byte_range("bytes=5-2", 100) is None


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_video_on_s3_plays_from_a_presigned_url_the_policy_allows(
    engine: AsyncEngine, settings: Any, s3_endpoint: str, acme: httpx.AsyncClient
) -> None:
    """Where the store presigns, the player loads the MP4 from the store itself: its
    origin, and only it, is added to ``media-src``."""
    s3_client(s3_endpoint).create_bucket(Bucket="console-media")
    on_s3 = settings.model_copy(
        update={
            "storage_url": "s3://console-media/c",
            "s3_endpoint_url": s3_endpoint,
            "s3_region": "us-east-1",
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
        }
    )
    video_id = (await acme.post("/v1/videos", json={"prompt": "a kite"})).json()["id"]
    async with engine.begin() as conn:
        await tasks.transition(conn, video_id, [TaskStatus.QUEUED], TaskStatus.STORING)
        await settlement.complete(conn, video_id, video_key=f"videos/{video_id}/video.mp4")
    app = create_app(on_s3)
    async with app.router.lifespan_context(app), _browser(app) as browser:
        assert (await login(browser, ADMIN_KEY)).status_code == 303
        page = await browser.get(f"/console/videos/{video_id}")
    assert page.status_code == 200, page.text
    store = origin_of(s3_endpoint)
    assert f'src="{store}/' in page.text
    policy = page.headers["content-security-policy"]
    assert f"media-src 'self' {store};" in policy
    assert "img-src 'self';" in policy


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_logout_and_an_idle_session_end_it(
    app: Starlette, console: httpx.AsyncClient, settings: Any
) -> None:
    page = await console.get("/console/videos")
    token = csrf_of(page.text)
    signed = console.cookies["gv_console"]
    body = session._serializer(settings).loads(signed)

    class Idle(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - session.IDLE_SECONDS - 1

    keys = session._serializer(settings).secret_keys
    idle = URLSafeTimedSerializer(keys, salt=session._SALT, signer=Idle).dumps(body)
    assert (await _with_cookie(app, str(idle))).status_code == 303
    assert (await _with_cookie(app, signed)).status_code == 200
    out = await console.post("/console/logout", data={"csrf": token})
    assert out.status_code == 303
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert (await console.get("/console/videos")).headers["location"] == "/console/login"
    # A copy of the cookie taken before the logout (another tab, a stolen one) is over too.
    assert (await _with_cookie(app, signed)).status_code == 303


def test_the_cookie_is_secure_behind_https() -> None:
    settings = Settings(environment="test", public_url="https://video.example")
    header = session.cookie_header(settings, session.fresh("key_x"))
    for flag in ("; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/console"):
        assert flag in header
    assert "Max-Age" not in header and "Expires" not in header
    plain = session.cookie_header(Settings(environment="test"), session.fresh("key_x"))
    assert "Secure" not in plain
