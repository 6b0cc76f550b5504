"""The operator console in a real headless Chromium (Debian's package, driven by
Playwright), against one stack for the module: the API and a worker as processes, the
simulator, PostgreSQL, Redis, local storage. Every request off 127.0.0.1 is aborted.

Each page's screenshot is written under ``test-output/console/``."""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Response, Route, async_playwright
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cli.supervise import HOST, Child, free_port, port_open
from tests.integration.conftest import ADMIN_KEY, TABLES
from tests.integration.stack import Stack, base_env, simulator
from tests.integration.test_docs_browser import CHROMIUM, FLAGS

SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "console"
XSS = "<script>alert(1)</script>"
# The simulator runs at 1/100 of real time: a task of 100,000 s stays running.
LONG = "[sim:duration=100000]"


@dataclass
class Console:
    url: str
    api: httpx.Client
    client_key: str
    # (url, headers) of every answer the browser received
    responses: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)

    def create(self, prompt: str, user: str = "alice", **extra: Any) -> str:
        answer = self.api.post(
            "/v1/videos",
            json={"prompt": prompt, "user": user, **extra},
            headers={"Authorization": f"Bearer {self.client_key}"},
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["id"])

    def wait_status(self, video_id: str, wanted: set[str], seconds: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            video: dict[str, Any] = self.api.get(f"/v1/videos/{video_id}").json()
            if video["status"] in wanted or time.monotonic() > deadline:
                assert video["status"] in wanted, video
                return video
            time.sleep(0.1)


@pytest.fixture(scope="module")
async def stack(
    migrated: AsyncEngine, pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Console]:
    await migrated.dispose()
    async with migrated.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
    redis = Redis.from_url(redis_url)
    await redis.flushall()
    await redis.aclose()
    log_dir = tmp_path_factory.mktemp("console")
    storage = {"GOOGLE_VIDEO_STORAGE_URL": (log_dir / "storage").as_uri()}
    with simulator(log_dir) as sim_url:
        env = {
            **base_env(pg_url, redis_url, storage, sim_url),
            "GOOGLE_VIDEO_ADMIN_KEY": ADMIN_KEY,
            "GOOGLE_VIDEO_API_KEY_CACHE_SECONDS": "0",
        }
        workers = Stack(env, sim_url, log_dir)
        workers.start_worker()
        port = free_port()
        command = [sys.executable, "-m", "cli.main", "api", "--port", str(port)]
        api = Child("api-console", command, env=env, output=log_dir / "api.log")
        try:
            with api.start(functools.partial(port_open, HOST, port), timeout=30):
                url = f"http://{HOST}:{port}"
                admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
                with httpx.Client(base_url=url, headers=admin, timeout=10) as client:
                    limits = {"max_concurrent_tasks_per_user": 100, "task_timeout_seconds": 600}
                    assert client.put("/v1/admin/config", json=limits).status_code == 200
                    made = client.post("/v1/admin/keys", json={"name": "acme"})
                    assert made.status_code == 201, made.text
                    grant = {"amount": 10_000, "reason": "test"}
                    for user in ("alice", "bob", "mallory"):
                        given = client.post(
                            f"/v1/credits/{user}/grants", params={"client": "acme"}, json=grant
                        )
                        assert given.status_code == 200, given.text
                    yield Console(url, client, made.json()["key"])
        finally:
            workers.stop_workers()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _context(browser: Browser, console: Console) -> BrowserContext:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})

    async def only_here(route: Route) -> None:
        if urlsplit(route.request.url).hostname == HOST:
            await route.continue_()
        else:
            console.elsewhere.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_here)

    async def seen(response: Response) -> None:
        console.responses.append((response.url, await response.all_headers()))

    context.on("response", seen)
    return context


async def _login(page: Page, console: Console, key: str) -> None:
    await page.goto(f"{console.url}/console/")
    await page.fill("input[name=key]", key)
    await page.click("button[type=submit]")


@pytest.fixture(scope="module")
async def page(browser: Browser, stack: Console) -> AsyncIterator[Page]:
    """One logged-in tab for the module."""
    context = await _context(browser, stack)
    tab = await context.new_page()

    async def on_dialog(dialog: Any) -> None:
        stack.dialogs.append(dialog.message)
        await dialog.accept()

    tab.on("dialog", on_dialog)
    await tab.goto(f"{stack.url}/console/login")
    await shot(tab, "login")
    await _login(tab, stack, ADMIN_KEY)
    await tab.wait_for_url("**/console/videos")
    try:
        yield tab
    finally:
        await context.close()


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_a_client_key_cannot_log_in(browser: Browser, stack: Console) -> None:
    context = await _context(browser, stack)
    try:
        tab = await context.new_page()
        await _login(tab, stack, stack.client_key)
        await tab.wait_for_selector("#login-error")
        assert "admin key" in await tab.inner_text("#login-error")
        await tab.goto(f"{stack.url}/console/videos")
        assert tab.url.endswith("/console/login")
    finally:
        await context.close()


async def test_find_a_video_by_user_play_it_and_read_its_timeline(
    page: Page, stack: Console
) -> None:
    stack.create("a lighthouse at dusk", user="bob")
    video_id = stack.create("a red fox in the snow")
    stack.wait_status(video_id, {"completed"})
    await page.goto(f"{stack.url}/console/videos")
    await page.fill("input[name=user]", "alice")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url("**user=alice**")
    rows = page.locator("#videos tbody tr[data-video]")
    assert await rows.count() == 1
    # Predicates are functions, not expressions: Playwright evals the string once inside
    # its DevTools call (CSP does not apply there) and keeps a function; an expression it
    # would eval again on every later poll, which the console's CSP (no 'unsafe-eval')
    # refuses whenever the first look is not already true.
    await page.wait_for_function(
        "() => { const img = document.querySelector('td.thumb img');"
        " return img !== null && img.complete && img.naturalWidth > 0; }"
    )
    await shot(page, "videos")
    await page.click(f"a[href='/console/videos/{video_id}']")
    await page.wait_for_selector("#player")
    await page.wait_for_function(
        "() => document.getElementById('player').readyState >= 2", timeout=15_000
    )
    await shot(page, "video")
    timeline = await page.inner_text("#timeline")
    for what in ("submit to", "poll:", "completed", "capture"):
        assert what in timeline, timeline
    await page.click("#replay")
    await page.wait_for_selector("#notice")
    assert "delivered again" in await page.inner_text("#notice")
    facts = await page.inner_text("dl.facts")
    assert re.search(r"\b[0-9a-f]{64}\b", facts), facts  # the SHA-256 among the media facts


async def test_cancel_a_running_video_and_see_the_release(page: Page, stack: Console) -> None:
    video_id = stack.create(f"a slow tide {LONG}")
    stack.wait_status(video_id, {"in_progress"})
    await page.goto(f"{stack.url}/console/videos/{video_id}")
    await page.click("#cancel")
    await page.wait_for_selector("#notice")
    assert stack.dialogs[-1].startswith("Cancel this video")
    assert "failed" in (await page.inner_text("#status")) or "cancelled" in (
        await page.inner_text("#status")
    )
    await page.goto(f"{stack.url}/console/credits?client=acme&user=alice")
    row = page.locator(
        "#ledger tbody tr", has=page.locator(f"a[href='/console/videos/{video_id}']")
    )
    kinds = await row.locator("td.kind").all_inner_texts()
    assert "release" in kinds and "hold" in kinds, kinds
    await shot(page, "credits")


async def test_a_new_price_is_charged_on_the_next_create(page: Page, stack: Console) -> None:
    await page.goto(f"{stack.url}/console/config")
    await page.fill("input[name='price.veo3']", "123")
    await page.click("#save")
    await page.wait_for_selector("#notice")
    video_id = stack.create("a priced comet", model="veo3")
    ledger = stack.api.get("/v1/credits/alice", params={"client": "acme"}).json()
    holds = [e for e in ledger["entries"] if e["task_id"] == video_id and e["kind"] == "hold"]
    assert [abs(e["amount"]) for e in holds] == [123], ledger


async def test_the_connection_test_reports_a_wrong_key(page: Page, stack: Console) -> None:
    await page.goto(f"{stack.url}/console/config")
    await page.fill("section.test input[name=upstream_api_key]", "wrong-key-0123456789")
    await page.click("#run-test")
    await page.wait_for_selector("#test-result")
    assert "key_rejected" in await page.inner_text("#test-result")
    await shot(page, "config")


async def test_a_hostile_prompt_renders_as_text(page: Page, stack: Console) -> None:
    video_id = stack.create(f"{XSS} [sim:fail=nope]", user="mallory")
    stack.wait_status(video_id, {"failed"})
    await page.goto(f"{stack.url}/console/videos?user=mallory")
    assert XSS in await page.inner_text("#videos")
    await page.goto(f"{stack.url}/console/videos/{video_id}")
    assert XSS in await page.inner_text("#request")
    assert await page.locator("script:not([src])").count() == 0
    assert not any(message == "1" for message in stack.dialogs)


async def test_forged_posts_are_refused_and_change_nothing(page: Page, stack: Console) -> None:
    video_id = stack.create(f"a patient snail {LONG}")
    stack.wait_status(video_id, {"in_progress", "queued"})
    url = f"{stack.url}/console/videos/{video_id}/cancel"
    forms: list[dict[str, str | float | bool]] = [{}, {"csrf": "wrong"}]
    for form in forms:
        answer = await page.request.post(url, form=form, max_redirects=0)
        assert answer.status == 403
        assert "CSRF" in await answer.text()
    await page.goto(f"{stack.url}/console/videos/{video_id}")
    await page.evaluate(
        "id => { const f = document.querySelector('form[action$=\"/cancel\"]');"
        " f.querySelector('input[name=csrf]').value = 'forged'; f.submit(); }",
        video_id,
    )
    await page.wait_for_selector("#problem")
    await shot(page, "forbidden")
    assert stack.api.get(f"/v1/videos/{video_id}").json()["status"] in ("in_progress", "queued")
    # Only this video's entries: videos of earlier tests may settle meanwhile.
    ledger = stack.api.get("/v1/credits/alice", params={"client": "acme"}).json()
    mine = [e["kind"] for e in ledger["entries"] if e["task_id"] == video_id]
    assert mine == ["hold"], ledger


async def test_health_and_every_console_answer_had_the_policy(page: Page, stack: Console) -> None:
    await page.goto(f"{stack.url}/console/health")
    await page.wait_for_selector("#health")
    await shot(page, "health")
    console = [(u, h) for u, h in stack.responses if urlsplit(u).path.startswith("/console")]
    assert len(console) > 20
    for url, headers in console:
        assert "script-src 'self'" in headers.get("content-security-policy", ""), url
        assert headers.get("x-frame-options") == "DENY", url
    assert stack.elsewhere == []
