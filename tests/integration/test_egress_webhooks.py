"""Webhook URLs that lead inward (issue 11), on PostgreSQL and on SQLite: refused when
registered (endpoints, their patches, a create's ``webhook_url``) with one problem text
whatever the reason, and refused again at delivery, where the delivery fails at once with
one attempt. A local listener shows that nothing arrives. The delivery job runs in this
process with the worker's own start-up, so its settings can differ from the API's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from sqlalchemy import select

from core.egress import REFUSED
from core.queue_codec import ARQ_CODEC
from core.repo.tables import tasks
from schemas.settings import Settings
from tests.integration.conftest import BACKENDS
from tests.integration.test_hostile_kinds import assert_problem
from tests.listener import Listener, listening, redirect
from worker.jobs.deliver import deliver_webhook
from worker.lifecycle import on_shutdown, on_startup

PROMPT = "a lighthouse in a storm"
STRICT = {"egress_allow": [], "egress_allow_http": True}  # http allowed: addresses refuse
LOOPBACK = {"egress_allow": ["127.0.0.0/8"], "egress_allow_http": True}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def egress() -> dict[str, Any]:
    """The API's egress settings; a test parametrizes ``egress`` to change them."""
    return STRICT


@pytest.fixture
def settings(settings: Settings, egress: dict[str, Any]) -> Settings:
    return settings.model_copy(update=egress)


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    async with listening() as result:
        yield result


def inward(listener: Listener) -> list[str]:
    """Targets on this host or in private networks, in the forms the review tried."""
    port = listener.port
    return [
        f"http://127.0.0.1:{port}/hook",
        f"https://[::ffff:127.0.0.1]:{port}/hook",
        f"https://[::7f00:1]:{port}/hook",
        f"https://[::ffff:0:7f00:1]:{port}/hook",
        "https://[64:ff9b:1::a00:1]/hook",
        "https://[fec0::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        f"http://localhost:{port}/hook",
        f"http://2130706433:{port}/hook",
        "https://no-such-host.invalid/hook",  # does not resolve: refused, in the same words
    ]


def assert_refused(response: httpx.Response, field: str) -> None:
    problem = assert_problem(response, 400, "url_not_allowed")
    assert problem["detail"] == f"{field}: {REFUSED}", problem
    assert problem["errors"] == [{"field": field, "message": REFUSED}]


async def test_endpoint_registration_refuses_every_inward_target(acme, listener) -> None:
    for url in inward(listener):
        assert_refused(await acme.post("/v1/webhook-endpoints", json={"url": url}), "url")
    assert (await acme.get("/v1/webhook-endpoints")).json()["data"] == []
    assert listener.connections == 0


async def test_patching_an_endpoint_to_an_inward_target_is_refused(acme, listener) -> None:
    created = await acme.post("/v1/webhook-endpoints", json={"url": "https://8.8.8.8/hook"})
    assert created.status_code == 201, created.text
    path = f"/v1/webhook-endpoints/{created.json()['id']}"
    for url in inward(listener):
        assert_refused(await acme.patch(path, json={"url": url, "description": "x"}), "url")
    after = (await acme.get(path)).json()
    assert (after["url"], after["description"]) == ("https://8.8.8.8/hook", "")
    assert listener.connections == 0


async def test_a_creates_inward_webhook_url_is_refused_before_anything_is_held(
    acme, listener, engine, assert_ledger
) -> None:
    for url in inward(listener):
        response = await acme.post("/v1/videos", json={"prompt": PROMPT, "webhook_url": url})
        assert_refused(response, "webhook_url")
    credits = (await acme.get("/v1/credits/acme")).json()
    assert (credits["balance"], credits["held"]) == (1000, 0)
    async with engine.connect() as conn:
        assert (await conn.execute(select(tasks.c.id))).all() == []
    await assert_ledger()
    assert listener.connections == 0


@pytest.mark.parametrize("egress", [LOOPBACK])
async def test_the_allowlist_lets_a_named_network_through_and_only_it(acme, listener) -> None:
    allowed = await acme.post("/v1/webhook-endpoints", json={"url": listener.url("/hook")})
    assert allowed.status_code == 201, allowed.text
    for url in ("https://[::ffff:127.0.0.1]/hook", "http://10.0.0.1/hook"):
        assert_refused(await acme.post("/v1/webhook-endpoints", json={"url": url}), "url")


# --- at delivery ----------------------------------------------------------------------


@pytest.fixture
async def deliver(settings: Settings) -> AsyncIterator[Any]:
    """``await deliver(delivery_id, **egress)``: one run of the delivery job in a worker
    context started with the API's settings changed by ``egress``."""
    redis = await create_pool(RedisSettings.from_dsn(settings.redis_url), **ARQ_CODEC)
    contexts: list[dict[str, Any]] = []

    async def run(delivery_id: str, **egress: Any) -> str:
        ctx: dict[str, Any] = {"settings": settings.model_copy(update=egress), "redis": redis}
        await on_startup(ctx)
        contexts.append(ctx)
        return await deliver_webhook(ctx, delivery_id)

    yield run
    for ctx in contexts:
        await on_shutdown(ctx)
    await redis.aclose()


async def _deliveries(acme: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    """The deliveries of the client's one event to ``path``, oldest first."""
    (event,) = (await acme.get("/v1/events")).json()["data"]
    detail = (await acme.get(f"/v1/events/{event['id']}")).json()
    found = [d for d in detail["deliveries"] if d["url"].endswith(path)]
    return sorted(found, key=lambda d: (d["attempts"] == 0, d["id"]))


@pytest.mark.parametrize("egress", [LOOPBACK])
async def test_a_target_no_longer_allowed_at_delivery_fails_at_once(
    acme, listener, deliver
) -> None:
    """Registered while the allowlist named loopback; the worker's allowlist no longer
    does. The endpoint's delivery and the create's ``webhook_url`` delivery each fail on
    their first attempt with the refusal text, and nothing reaches the listener; under the
    old allowlist the same job does reach it (and does not follow its redirect inward)."""
    await acme.post("/v1/webhook-endpoints", json={"url": listener.url("/endpoint")})
    await acme.post("/v1/webhook-secret")
    video = await acme.post(
        "/v1/videos", json={"prompt": PROMPT, "webhook_url": listener.url("/direct")}
    )
    assert video.status_code == 200, video.text
    await acme.post(f"/v1/videos/{video.json()['id']}/cancel")  # the event, two deliveries

    for path in ("/direct", "/endpoint"):
        (delivery,) = await _deliveries(acme, path)
        assert await deliver(delivery["id"], **STRICT) == "failed"
        (delivery,) = await _deliveries(acme, path)
        assert (delivery["status"], delivery["attempts"]) == ("failed", 1), delivery
        assert delivery["next_attempt_at"] is None
        (attempt,) = delivery["attempt_log"]
        assert (attempt["status_code"], attempt["error"]) == (None, REFUSED)
    assert listener.connections == 0
    endpoint = (await acme.get("/v1/webhook-endpoints")).json()["data"][0]
    assert endpoint["enabled"] is True  # kept: each delivery is checked anew

    (event,) = (await acme.get("/v1/events")).json()["data"]
    assert (await acme.post(f"/v1/events/{event['id']}/replay")).status_code == 202
    listener.answers["/endpoint"] = redirect("http://169.254.169.254/latest/meta-data/")
    _, replayed = await _deliveries(acme, "/endpoint")
    assert await deliver(replayed["id"], **LOOPBACK) == "retry"
    assert [r.path for r in listener.requests] == ["/endpoint"]  # and nothing followed
    _, replayed = await _deliveries(acme, "/endpoint")
    assert [a["status_code"] for a in replayed["attempt_log"]] == [302]
