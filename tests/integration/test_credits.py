"""Holds are race-free: concurrent creates never overspend or exceed the user's limit."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import DBAPIError

from core.outages import database_unreachable
from core.repo import creation
from schemas.clock import utcnow

PROMPT = "ocean waves at sunset"


async def test_short_balance_is_402_with_balance_and_price(client_for, grant, assert_ledger):
    acme = await client_for("acme")
    await grant("acme", "acme", 99)
    response = await acme.post("/v1/videos", json={"prompt": PROMPT, "model": "veo3"})
    assert response.status_code == 402
    problem = response.json()
    assert (problem["code"], problem["balance"], problem["price"]) == (
        "insufficient_credits",
        99,
        100,
    )
    await assert_ledger()


async def test_fifty_concurrent_creates_against_balance_for_ten(
    admin, client_for, grant, assert_ledger
):
    await admin.put("/v1/admin/config", json={"max_concurrent_tasks_per_user": 1000})
    acme = await client_for("acme")
    await grant("acme", "alice", 1000)  # veo3 costs 100: exactly ten fit
    answers = await asyncio.gather(
        *(
            acme.post("/v1/videos", json={"prompt": f"{PROMPT} {n}", "user": "alice"})
            for n in range(50)
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) == 10 and codes.count(402) == 40
    credits = (await acme.get("/v1/credits/alice")).json()
    assert (credits["balance"], credits["held"]) == (0, 1000)
    await assert_ledger()


async def test_concurrency_limit_is_race_free(client_for, grant, assert_ledger):
    acme = await client_for("acme")
    await grant("acme", "bob", 10_000)  # balance is no limit; the default limit is 3
    answers = await asyncio.gather(
        *(
            acme.post("/v1/videos", json={"prompt": f"{PROMPT} {n}", "user": "bob"})
            for n in range(20)
        )
    )
    codes = [a.status_code for a in answers]
    assert codes.count(200) == 3 and codes.count(429) == 17
    assert {a.json()["code"] for a in answers if a.status_code == 429} == {
        "too_many_concurrent_tasks"
    }
    credits = (await acme.get("/v1/credits/bob")).json()
    assert (credits["balance"], credits["held"]) == (10_000 - 300, 300)
    await assert_ledger()


async def test_finished_tasks_free_the_concurrency_slot(client_for, grant):
    acme = await client_for("acme")
    await grant("acme", "acme", 1000)
    ids = [(await acme.post("/v1/videos", json={"prompt": PROMPT})).json()["id"] for _ in range(3)]
    assert (await acme.post("/v1/videos", json={"prompt": PROMPT})).status_code == 429
    await acme.post(f"/v1/videos/{ids[0]}/cancel")
    assert (await acme.post("/v1/videos", json={"prompt": PROMPT})).status_code == 200


async def test_ledger_pages_backwards(client_for, grant):
    acme = await client_for("acme")
    for _ in range(5):
        await grant("acme", "acme", 10)
    first = (await acme.get("/v1/credits/acme", params={"limit": 2})).json()
    assert first["has_more"] and len(first["entries"]) == 2
    rest = (
        await acme.get(
            "/v1/credits/acme", params={"before": first["entries"][-1]["id"], "limit": 10}
        )
    ).json()
    assert len(rest["entries"]) == 3 and not rest["has_more"]


async def test_grants_to_a_reserved_client_id_in_another_case_are_refused(admin, assert_ledger):
    """``ADMIN`` or ``System`` would be accounts no key can ever use (keys refuse them)."""
    for client in ("ADMIN", "System", "SYSTEM"):
        response = await admin.post(
            f"/v1/credits/zz/grants?client={client}", json={"amount": 5, "reason": "x"}
        )
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "validation_error"
    kept = await admin.post(
        "/v1/credits/zz/grants?client=newcomer", json={"amount": 5, "reason": "ahead"}
    )
    assert kept.status_code == 200, kept.text  # a client with no key yet: granted ahead
    await assert_ledger()


async def test_a_create_on_a_dropped_connection_is_an_invalidating_dbapi_error(engine):
    if engine.dialect.name != "postgresql":
        return  # the one-statement create on the driver connection is PostgreSQL's
    now = utcnow()
    values = {
        "id": "video_dropped",
        "client_id": "acme",
        "user": "carol",
        "task_type": "text_to_video",
        "status": "queued",
        "model": "veo3",
        "prompt": PROMPT,
        "images": [],
        "input_refs": [],
        "price": 100,
        "request_snapshot": {},
        "upstream_response": {},
        "metadata": {},
        "created_at": now,
        "updated_at": now,
    }
    async with engine.connect() as conn:
        pid = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
        await conn.rollback()
        async with engine.connect() as other:
            await other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        driver = (await conn.get_raw_connection()).driver_connection
        deadline = asyncio.get_running_loop().time() + 10
        while not driver.is_closed():  # the server's goodbye and EOF are on their way
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        with pytest.raises(DBAPIError) as caught:
            await creation.create_held(conn, values, max_active=3)
    assert caught.value.connection_invalidated and database_unreachable(caught.value)
    async with engine.connect() as conn:  # the pool hands out a live connection again
        assert await creation.create_held(conn, values, max_active=3) is None  # no account
