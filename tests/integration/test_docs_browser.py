"""``GET /`` and ``/docs`` in a real headless Chromium (Debian's package, driven by
Playwright): a browser lands on the index, follows its link to the documentation, and
Swagger UI renders every operation of ``/openapi.json`` with nothing fetched from
anywhere but the service itself (every other request is aborted and counted)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Route, async_playwright

from cli.supervise import Child, free_port, port_open

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium calls Google's hosts at start.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def api(migrated, pg_url, redis_url, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_VIDEO_")},
        "GOOGLE_VIDEO_ENVIRONMENT": "test",
        "GOOGLE_VIDEO_DATABASE_URL": pg_url,
        "GOOGLE_VIDEO_REDIS_URL": redis_url,
        "GOOGLE_VIDEO_STORAGE_URL": (tmp_path / "storage").as_uri(),
    }
    command = [sys.executable, "-m", "cli.main", "api", "--port", str(port)]
    child = Child("api-docs", command, env=env, output=tmp_path / "api.log")
    child.start(functools.partial(port_open, "127.0.0.1", port), timeout=30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        child.stop(grace=10)


async def test_the_index_links_to_docs_that_render_every_operation_offline(
    api: str, tmp_path: Path
) -> None:
    paths = httpx.get(f"{api}/openapi.json").json()["paths"]
    operations = sum(
        1
        for item in paths.values()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    )
    elsewhere: list[str] = []
    failed: list[str] = []

    async def only_here(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page()
            await page.route("**/*", only_here)
            page.on("requestfailed", lambda request: failed.append(request.url))
            await page.goto(f"{api}/")
            await page.click("text=API documentation")
            await page.wait_for_selector(".opblock", timeout=20_000)
            shown = await page.locator(".opblock").count()
            title = await page.locator(".info .title").inner_text()
            await page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
        finally:
            await browser.close()
    assert page.url == f"{api}/docs"
    assert "google-video" in title
    assert shown == operations
    assert elsewhere == [] and failed == []
