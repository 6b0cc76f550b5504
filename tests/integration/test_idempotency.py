"""Idempotency-Key: one key, one task, one hold."""

from __future__ import annotations

import asyncio

PROMPT = "a paper boat on a river"


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
    ok = [a for a in answers if a.status_code == 200]
    assert {a.json()["id"] for a in ok} and len({a.json()["id"] for a in ok}) == 1
    assert all(a.status_code in (200, 409) for a in answers)
    assert {a.json()["code"] for a in answers if a.status_code == 409} <= {
        "idempotency_request_in_progress"
    }
    assert (await acme.get("/v1/credits/acme")).json()["held"] == 100
    await assert_ledger()


async def test_in_flight_key_is_409(client_for, grant, engine):
    from datetime import timedelta

    from sqlalchemy import insert

    from core.repo.tables import idempotency
    from schemas.clock import utcnow
    from service.idempotency import request_hash

    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    async with engine.begin() as conn:  # another replica is mid-way through this key
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


async def test_answered_key_survives_a_late_cleanup(client_for, grant, engine):
    """A request cancelled after its create committed must not free the key (a retry
    would then create and charge a second video)."""
    from service.idempotency import release_claim

    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    headers = {"Idempotency-Key": "committed"}
    first = (await acme.post("/v1/videos", json={"prompt": PROMPT}, headers=headers)).json()
    await release_claim(engine, "acme", "committed")  # what a cancelled request's cleanup runs
    again = (await acme.post("/v1/videos", json={"prompt": PROMPT}, headers=headers)).json()
    assert again["id"] == first["id"]
    assert (await acme.get("/v1/credits/acme")).json()["held"] == 100
