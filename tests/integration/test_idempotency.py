"""Idempotency-Key: one key, one task, one hold (on PostgreSQL and on SQLite)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from core.repo.tables import tasks
from tests.integration.conftest import BACKENDS
from tests.integration.images import PNG_URI

PROMPT = "a paper boat on a river"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_same_key_same_body_replays_without_second_hold(client_for, grant, assert_ledger):
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    headers = {"Idempotency-Key": "order-1"}
    first = await acme.post("/v1/videos", json={"prompt": PROMPT}, headers=headers)
    second = await acme.post("/v1/videos", json={"prompt": PROMPT}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert (await acme.get("/v1/credits/acme")).json()["held"] == 100
    await assert_ledger()


async def test_same_key_other_body_is_422(client_for, grant):
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    headers = {"Idempotency-Key": "order-2"}
    await acme.post("/v1/videos", json={"prompt": PROMPT}, headers=headers)
    other = await acme.post("/v1/videos", json={"prompt": PROMPT + "!"}, headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


async def test_keys_are_scoped_per_client(client_for, grant):
    acme, globex = await client_for("acme"), await client_for("globex")
    await grant("acme", "acme", 100)
    await grant("globex", "globex", 100)
    headers = {"Idempotency-Key": "shared"}
    a = (await acme.post("/v1/videos", json={"prompt": PROMPT}, headers=headers)).json()
    b = (await globex.post("/v1/videos", json={"prompt": PROMPT}, headers=headers)).json()
    assert a["id"] != b["id"]


async def test_concurrent_same_key_creates_one_task(client_for, grant, assert_ledger):
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    headers = {"Idempotency-Key": "race"}
    answers = await asyncio.gather(
        *(acme.post("/v1/videos", json={"prompt": PROMPT}, headers=headers) for _ in range(10))
    )
    # The losers wait for the winner's transaction and answer with its video.
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert (await acme.get("/v1/credits/acme")).json()["held"] == 100
    await assert_ledger()


async def test_unanswered_record_of_an_earlier_version_is_409(client_for, grant, engine):
    from datetime import timedelta

    from sqlalchemy import insert

    from core.repo.tables import idempotency
    from schemas.clock import utcnow
    from service.idempotency import request_hash

    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    async with engine.begin() as conn:  # an older replica committed its claim first
        await conn.execute(
            insert(idempotency).values(
                client_id="acme",
                key="busy",
                request_hash=request_hash({}),
                created_at=utcnow(),
                expires_at=utcnow() + timedelta(days=1),
            )
        )
    response = await acme.post(
        "/v1/videos", json={"prompt": PROMPT}, headers={"Idempotency-Key": "busy"}
    )
    assert (
        response.status_code == 409 and response.json()["code"] == "idempotency_request_in_progress"
    )


async def test_failed_create_does_not_burn_the_key(client_for, grant):
    acme = await client_for("acme")
    headers = {"Idempotency-Key": "retry-after-topup"}
    assert (
        await acme.post("/v1/videos", json={"prompt": PROMPT}, headers=headers)
    ).status_code == 402
    await grant("acme", "acme", 100)
    assert (
        await acme.post("/v1/videos", json={"prompt": PROMPT}, headers=headers)
    ).status_code == 200


class StallingStorage:
    """The app's own storage, whose first ``put_bytes`` waits until released: a create
    slowed down while it stores its input images."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.stalled = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def put_bytes(self, key: str, data: bytes, mime: str) -> None:
        if not self.stalled.is_set():
            self.stalled.set()
            await self.release.wait()
        await self.real.put_bytes(key, data, mime)


async def test_slow_create_and_its_retry_make_one_task_and_one_hold(
    app: Starlette, client_for, grant, engine, assert_ledger, tmp_path
):
    """However long a create takes, a retry with its key never makes a second task: the
    key is taken in the create's transaction, not by a claim that could be thought dead."""
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    storage = StallingStorage(app.state.ctx.storage)
    app.state.ctx.storage = storage
    headers = {"Idempotency-Key": "slow-upload"}
    body = {"prompt": PROMPT, "model": "veo3-pro-frames", "images": [PNG_URI]}
    slow = asyncio.create_task(acme.post("/v1/videos", json=body, headers=headers))
    await asyncio.wait_for(storage.stalled.wait(), timeout=10)
    retry = await acme.post("/v1/videos", json=body, headers=headers)
    assert retry.status_code == 200, retry.text
    storage.release.set()
    first = await asyncio.wait_for(slow, timeout=30)
    assert first.status_code == 200, first.text
    assert first.json()["id"] == retry.json()["id"]
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(tasks))).scalar_one() == 1
    credits = (await acme.get("/v1/credits/acme")).json()
    assert (credits["balance"], credits["held"]) == (800, 200)
    assert [e["kind"] for e in credits["entries"]] == ["hold", "grant"]
    # The loser's stored input went with it.
    stored = sorted(p.parent.name for p in (tmp_path / "storage" / "inputs").rglob("*.png"))
    assert stored == [first.json()["id"]]
    await assert_ledger()


async def test_a_failed_create_frees_its_key_at_once(client_for, grant, engine):
    """Nothing to clean up: the record went with the rolled-back transaction."""
    from core.repo.tables import idempotency

    acme = await client_for("acme")
    headers = {"Idempotency-Key": "no-credits"}
    response = await acme.post("/v1/videos", json={"prompt": PROMPT}, headers=headers)
    assert response.status_code == 402
    async with engine.connect() as conn:
        assert (await conn.execute(select(idempotency.c.key))).all() == []


async def test_a_replay_of_a_deleted_video_is_404_and_charges_nothing(
    client_for, grant, assert_ledger
):
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    headers = {"Idempotency-Key": "then-deleted"}
    first = (await acme.post("/v1/videos", json={"prompt": PROMPT}, headers=headers)).json()
    assert (await acme.delete(f"/v1/videos/{first['id']}")).status_code == 200
    again = await acme.post("/v1/videos", json={"prompt": PROMPT}, headers=headers)
    assert again.status_code == 404 and again.json()["code"] == "not_found"
    credits = (await acme.get("/v1/credits/acme")).json()
    assert (credits["balance"], credits["held"]) == (1000, 0)
    await assert_ledger()
