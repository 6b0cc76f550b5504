"""POST /v1/admin/config/test against the real simulator: what it reads from the key's
answer, that it creates nothing upstream, and that the key never comes back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from cli.supervise import free_port
from schemas.settings import Settings
from service.app import create_app
from tests.integration.conftest import ADMIN_KEY
from tests.integration.stack import SIM_KEY, simulator
from tests.integration.test_openai_sdk import ADMIN_KEY as PROCESS_ADMIN_KEY
from tests.integration.test_openai_sdk import api_env, start_api
from worker.upstream.check import check_connection

WRONG_KEY = "sk-wrong-key-0123456789abcdef"
TEST = "/v1/admin/config/test"


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with simulator(tmp_path_factory.mktemp("config-test-sim")) as url:
        yield url


@pytest.fixture
async def admin(
    engine: AsyncEngine, settings: Settings, sim_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of an API wired as `google-video api` wires it, its stored config
    pointing at the simulator with the right key."""
    application: Starlette = create_app(settings, upstream_check=check_connection)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ) as client,
    ):
        stored = {
            "upstream_kind": "simulator",
            "upstream_base_url": sim_url,
            "upstream_api_key": SIM_KEY,
        }
        assert (await client.put("/v1/admin/config", json=stored)).status_code == 200
        yield client


def _stats(sim_url: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"{sim_url}/_sim/stats").json()
    return stats


async def _test(admin: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await admin.post(TEST, json=body)
    assert response.status_code == 200, response.text
    assert SIM_KEY not in response.text and WRONG_KEY not in response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_the_stored_right_key_is_accepted_and_nothing_is_created(
    admin: httpx.AsyncClient, sim_url: str
) -> None:
    before = _stats(sim_url)

    answer = await _test(admin, {})

    assert answer["ok"] is True and answer["result"] == "key_accepted", answer
    assert answer["provider"] == "simulator" and answer["base_url"] == sim_url
    assert answer["latency_ms"] >= 0 and answer["status"] is None
    after = _stats(sim_url)
    assert (after["submits"], after["tasks"]) == (before["submits"], before["tasks"]) == (0, 0)


async def test_a_candidate_wrong_key_is_rejected_and_not_stored(
    admin: httpx.AsyncClient, sim_url: str
) -> None:
    answer = await _test(admin, {"upstream_api_key": WRONG_KEY})

    assert answer["ok"] is False and answer["result"] == "key_rejected", answer
    assert answer["status"] == 401
    # The stored key is untouched: the stored config still passes.
    assert (await _test(admin, {}))["result"] == "key_accepted"


async def test_the_stored_key_is_not_sent_to_a_new_destination(
    admin: httpx.AsyncClient, sim_url: str
) -> None:
    # The same simulator under another name: a new base URL without a key is checked
    # with none, as a write would have cleared it.
    elsewhere = sim_url.replace("127.0.0.1", "localhost")

    answer = await _test(admin, {"upstream_base_url": elsewhere})

    assert answer["result"] == "key_rejected" and answer["base_url"] == elsewhere, answer
    with_key = await _test(admin, {"upstream_base_url": elsewhere, "upstream_api_key": SIM_KEY})
    assert with_key["result"] == "key_accepted", with_key


async def test_an_exhausted_key_is_rejected(admin: httpx.AsyncClient, sim_url: str) -> None:
    httpx.post(f"{sim_url}/_sim/config", json={"key_exhausted": True}).raise_for_status()
    try:
        answer = await _test(admin, {})
    finally:
        httpx.post(f"{sim_url}/_sim/config", json={"key_exhausted": False}).raise_for_status()

    assert answer["result"] == "key_rejected" and answer["status"] == 401, answer
    assert "quota" in answer["detail"]


async def test_the_gemini_provider_is_checked_with_its_own_stored_access(
    admin: httpx.AsyncClient, sim_url: str
) -> None:
    """The simulator speaks the Gemini API too: its key check lists the models."""
    access = {"gemini": {"base_url": sim_url, "api_key": SIM_KEY}}
    assert (await admin.put("/v1/admin/config", json={"providers": access})).status_code == 200

    stored = await _test(admin, {"provider": "gemini"})
    wrong = await _test(admin, {"provider": "gemini", "upstream_api_key": WRONG_KEY})

    assert stored["result"] == "key_accepted" and stored["provider"] == "gemini", stored
    assert stored["base_url"] == sim_url
    # Google refuses a bad key with 400 API_KEY_INVALID: still the key, not the request.
    assert wrong["result"] == "key_rejected" and wrong["status"] == 400, wrong
    assert _stats(sim_url)["submits"] == 0
    both = await admin.post(TEST, json={"provider": "gemini", "upstream_kind": "gateway"})
    assert both.status_code == 400


async def test_a_host_nothing_listens_on_is_unreachable(admin: httpx.AsyncClient) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()

    answer = await _test(admin, {"upstream_base_url": nowhere, "upstream_api_key": SIM_KEY})

    assert answer["ok"] is False and answer["result"] == "unreachable", answer
    assert answer["status"] is None and time.monotonic() - started < 5


async def test_credentials_in_the_base_url_are_not_echoed(admin: httpx.AsyncClient) -> None:
    port = free_port()

    answer = await _test(admin, {"upstream_base_url": f"http://user:secret@127.0.0.1:{port}"})

    assert answer["base_url"] == f"http://127.0.0.1:{port}" and "secret" not in str(answer)


async def test_bad_input_is_a_problem_and_clients_are_refused(
    admin: httpx.AsyncClient, client_for: Any
) -> None:
    for body in ({"upstream_kind": "nope"}, {"upstream_base_url": "ftp://x"}, {"other": 1}):
        response = await admin.post(TEST, json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    client = await client_for("acme")
    async with client:
        assert (await client.post(TEST, json={})).status_code == 403


def test_the_api_process_runs_the_check(
    migrated: AsyncEngine,
    pg_url: str,
    redis_url: str,
    sim_url: str,
    tmp_path: Path,
) -> None:
    """`google-video api` hands the worker's check to the API (which cannot import it)."""
    log = tmp_path / "api.log"
    for api in start_api(api_env(pg_url, redis_url, tmp_path / "storage"), log):
        with api.http(PROCESS_ADMIN_KEY) as http:
            candidate = {
                "upstream_kind": "simulator",
                "upstream_base_url": sim_url,
                "upstream_api_key": WRONG_KEY,
            }
            rejected = http.post(TEST, json=candidate)
            accepted = http.post(TEST, json={**candidate, "upstream_api_key": SIM_KEY})
        assert rejected.json()["result"] == "key_rejected", rejected.text
        assert accepted.json()["result"] == "key_accepted", accepted.text
    assert WRONG_KEY not in log.read_text() and SIM_KEY not in log.read_text()
