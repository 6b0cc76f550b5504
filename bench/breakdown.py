"""Where the create path's CPU goes: its pieces timed one by one, in one process.

Diagnostic, not a target: each piece runs ``n`` times sequentially (one request at a
time, so no pool or lock waits) against a private PostgreSQL + Redis, and the CPU time
of this process per call is reported (``time.process_time``: PostgreSQL's own CPU is not
in it). Pieces:

- the whole ``service.creation.create_video`` call (no HTTP);
- its database transaction as the product writes it (``core.ledger.hold``,
  ``video_queries.active_count / insert_task / get``), on the product engine
  (``pool_pre_ping=True``), on the same engine without pre-ping, and with the same five
  statements prebuilt once (SQLAlchemy Core with ``bindparam``, parameters passed per
  call) -- the suggested fix;
- the same five statements in raw asyncpg, and the DESIGN reference's three;
- a bare pool checkout (what pre-ping costs on its own);
- pydantic in and out (``VideoCreate`` validation, ``video_of(row).model_dump``);
- the ARQ enqueue; one structlog INFO line (JSON, to /dev/null).

``python -m bench.breakdown [--n 300]`` prints JSON (a few seconds per piece).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import (
    SIM_KEY,
    Infra,
    log,
    seed_accounts_sql,
    start_simulator,
)

PROMPT = "A red fox running through fresh snow at dawn, cinematic"
USERS = 1000


async def _timed(fn: Callable[[int], Awaitable[Any]], n: int) -> dict[str, float]:
    for i in range(min(20, n)):  # warm caches (compiled statements, prepared statements)
        await fn(i)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(n):
        await fn(i)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"cpu_us": round(1e6 * cpu / n), "wall_us": round(1e6 * wall / n)}


async def _main(infra: Infra, n: int, devnull: Any) -> dict[str, Any]:
    # Product imports here: after the environment points at the private servers.
    import asyncpg
    from core.tables import accounts, entries, tasks
    from sqlalchemy import bindparam, func, insert, select, update
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from core import ledger
    from core.apikeys import Principal
    from core.ids import new_id
    from core.logging import configure
    from schemas import jobs
    from schemas.api import VideoCreate
    from schemas.config import RuntimeConfigPatch
    from schemas.settings import Settings
    from schemas.status import ACTIVE, Role, TaskStatus, TaskType
    from schemas.tables import utcnow
    from service import creation, video_queries
    from service.app import create_app

    try:
        from schemas.presenter import video_of
    except ImportError:  # older layout
        from service.presenter import video_of  # type: ignore[no-redef]

    settings = Settings(
        database_url=infra.pg.url,
        redis_url=infra.redis.url,
        data_dir=infra.base / "data",
        log_format="json",
        log_level="INFO",
    )
    real_stderr, sys.stderr = sys.stderr, devnull
    try:
        configure("json", "INFO")
    finally:
        sys.stderr = real_stderr
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        return await _pieces(
            app.state.ctx,
            infra,
            n,
            devnull,
            asyncpg=asyncpg,
            sa={
                "bindparam": bindparam,
                "func": func,
                "insert": insert,
                "select": select,
                "update": update,
                "create_async_engine": create_async_engine,
                "NullPool": NullPool,
            },
            mods={
                "ledger": ledger,
                "Principal": Principal,
                "new_id": new_id,
                "accounts": accounts,
                "entries": entries,
                "tasks": tasks,
                "jobs": jobs,
                "VideoCreate": VideoCreate,
                "RuntimeConfigPatch": RuntimeConfigPatch,
                "ACTIVE": ACTIVE,
                "Role": Role,
                "TaskStatus": TaskStatus,
                "TaskType": TaskType,
                "utcnow": utcnow,
                "creation": creation,
                "video_queries": video_queries,
                "video_of": video_of,
            },
        )


async def _pieces(
    context: Any,
    infra: Infra,
    n: int,
    devnull: Any,
    *,
    asyncpg: Any,
    sa: dict[str, Any],
    mods: dict[str, Any],
) -> dict[str, Any]:
    m = mods
    tasks, accounts, entries = m["tasks"], m["accounts"], m["entries"]
    await context.config.update(m["RuntimeConfigPatch"](max_concurrent_tasks_per_user=10_000))
    principal = m["Principal"]("key_bench", "bench", m["Role"].CLIENT)
    active = [str(s) for s in m["ACTIVE"]]
    bp = sa["bindparam"]

    def body(i: int) -> dict[str, Any]:
        return {"prompt": PROMPT, "model": "veo3", "user": f"u{i % USERS}"}

    def values(i: int) -> dict[str, Any]:
        now = m["utcnow"]()
        return {
            "id": m["new_id"]("video"),
            "client_id": "bench",
            "user": f"u{i % USERS}",
            "task_type": m["TaskType"].TEXT_TO_VIDEO,
            "status": m["TaskStatus"].QUEUED,
            "model": "veo3",
            "prompt": PROMPT,
            "enhance_prompt": False,
            "aspect_ratio": "16:9",
            "seed": None,
            "images": [],
            "input_refs": [],
            "price": 100,
            "request_snapshot": {"prompt": PROMPT, "model": "veo3", "image_count": 0},
            "upstream_response": {},
            "metadata": {},
            "webhook_url": None,
            "created_at": now,
            "updated_at": now,
            "next_attempt_at": now,
        }

    async def ours_tx(engine: Any, i: int) -> Any:
        v = values(i)
        async with engine.begin() as conn:
            await m["ledger"].hold(conn, "bench", v["user"], v["id"], 100)
            await m["video_queries"].active_count(conn, "bench", v["user"])
            await m["video_queries"].insert_task(conn, v)
            return await m["video_queries"].get(conn, principal, v["id"])

    no_ping = sa["create_async_engine"](
        infra.pg.url, pool_size=10, max_overflow=10, pool_pre_ping=False
    )

    # The suggested fix: the same five statements built once, parameters per call.
    hold = (
        sa["update"](accounts)
        .where(
            accounts.c.client_id == bp("c"),
            accounts.c.user == bp("u"),
            accounts.c.balance >= bp("amount"),
        )
        .values(
            balance=accounts.c.balance - bp("amount"),
            held=accounts.c.held + bp("amount"),
            updated_at=bp("at"),
        )
        .returning(accounts.c.balance, accounts.c.held)
    )
    entry = sa["insert"](entries)
    count = sa["select"](sa["func"].count()).where(
        tasks.c.client_id == bp("c"), tasks.c.user == bp("u"), tasks.c.status.in_(active)
    )
    insert_task = sa["insert"](tasks)
    get = sa["select"](tasks).where(
        tasks.c.id == bp("id"), tasks.c.deleted_at.is_(None), tasks.c.client_id == bp("c")
    )

    async def prebuilt_tx(i: int) -> Any:
        v = values(i)
        now = v["created_at"]
        async with no_ping.begin() as conn:
            after = (
                await conn.execute(hold, {"c": "bench", "u": v["user"], "amount": 100, "at": now})
            ).first()
            await conn.execute(
                entry,
                {
                    "client_id": "bench",
                    "user": v["user"],
                    "task_id": v["id"],
                    "settles": None,
                    "kind": "hold",
                    "amount": 100,
                    "balance_after": after.balance,
                    "held_after": after.held,
                    "reason": None,
                    "at": now,
                },
            )
            await conn.execute(count, {"c": "bench", "u": v["user"]})
            await conn.execute(insert_task, v)
            return (await conn.execute(get, {"id": v["id"], "c": "bench"})).first()

    pool = await asyncpg.create_pool(infra.pg.dsn, min_size=2, max_size=4)
    raw_hold = (
        "UPDATE accounts SET balance = balance - $1, held = held + $1, updated_at = $4"
        ' WHERE client_id = $2 AND "user" = $3 AND balance >= $1 RETURNING balance, held'
    )
    raw_entry = (
        'INSERT INTO credit_entries (client_id, "user", task_id, kind, amount, balance_after,'
        " held_after, at) VALUES ($1, $2, $3, 'hold', $4, $5, $6, $7)"
    )
    raw_count = (
        'SELECT count(*) FROM video_tasks WHERE client_id = $1 AND "user" = $2'
        " AND status = ANY($3::varchar[])"
    )
    raw_task = (
        'INSERT INTO video_tasks (id, client_id, "user", task_type, status, model, prompt,'
        " enhance_prompt, aspect_ratio, images, input_refs, progress, storage_status, price,"
        " request_snapshot, upstream_response, metadata, polls, submit_attempts, created_at,"
        " updated_at, next_attempt_at) VALUES ($1, $2, $3, 'text_to_video', 'queued', $4, $5,"
        " false, '16:9', '[]', '[]', 0, 'pending', 100, $6, '{}', '{}', 0, 0, $7, $7, $7)"
    )
    raw_get = "SELECT * FROM video_tasks WHERE id = $1 AND deleted_at IS NULL AND client_id = $2"

    async def raw_tx(i: int, full: bool) -> Any:
        v = values(i)
        now = v["created_at"]
        snap = json.dumps(v["request_snapshot"])
        async with pool.acquire() as conn, conn.transaction():
            after = await conn.fetchrow(raw_hold, 100, "bench", v["user"], now)
            await conn.execute(raw_entry, "bench", v["user"], v["id"], 100, after[0], after[1], now)
            if full:
                await conn.fetchval(raw_count, "bench", v["user"], active)
            await conn.execute(raw_task, v["id"], "bench", v["user"], "veo3", PROMPT, snap, now)
            if full:
                return await conn.fetchrow(raw_get, v["id"], "bench")
            return None

    fresh = sa["create_async_engine"](infra.pg.url, poolclass=sa["NullPool"])

    async def checkout(engine: Any) -> None:
        async with engine.connect():
            pass

    sample_row = await ours_tx(context.engine, 0)
    log_ = __import__("structlog").get_logger("service.creation")

    async def pydantic(i: int) -> None:
        req = m["VideoCreate"].model_validate(body(i))
        m["video_of"](sample_row).model_dump(mode="json")
        req.model_dump(mode="json", exclude_none=True, exclude={"images"})

    async def enqueue(i: int) -> None:
        task_id = m["new_id"]("video")
        await context.queue.enqueue_job(
            m["jobs"].SUBMIT, task_id, _job_id=m["jobs"].submit_job_id(task_id)
        )

    async def log_line(i: int) -> None:
        log_.info("video_created", task_id="video_x", model="veo3", user="u1", price=100)

    async def whole(i: int) -> None:
        req = m["VideoCreate"].model_validate(body(i))
        await m["creation"].create_video(context, principal, req, [], None)

    real_stderr, sys.stderr = sys.stderr, devnull
    try:
        results = {
            "create_video (whole service call, no HTTP)": await _timed(whole, n),
            "DB transaction, product code, pre-ping on (as shipped)": await _timed(
                lambda i: ours_tx(context.engine, i), n
            ),
            "DB transaction, product code, pre-ping off": await _timed(
                lambda i: ours_tx(no_ping, i), n
            ),
            "DB transaction, same 5 statements prebuilt once, pre-ping off": await _timed(
                prebuilt_tx, n
            ),
            "DB transaction, same 5 statements, raw asyncpg": await _timed(
                lambda i: raw_tx(i, True), n
            ),
            "DB transaction, DESIGN reference (3 statements), raw asyncpg": await _timed(
                lambda i: raw_tx(i, False), n
            ),
            "pool checkout + return, pre-ping on": await _timed(
                lambda i: checkout(context.engine), n
            ),
            "pool checkout + return, pre-ping off": await _timed(lambda i: checkout(no_ping), n),
            "new connection (asyncpg connect + SQLAlchemy on-connect; client side)": await _timed(
                lambda i: checkout(fresh), max(20, n // 10)
            ),
            "pydantic: VideoCreate in, Video out, request snapshot": await _timed(pydantic, n),
            "ARQ enqueue_job (submit)": await _timed(enqueue, n),
            "structlog INFO line (JSON)": await _timed(log_line, n),
        }
    finally:
        sys.stderr = real_stderr
        await pool.close()
        await no_ping.dispose()
        await fresh.dispose()
    return results


async def _hop_main(infra: Infra, sim_url: str, n: int, devnull: Any) -> dict[str, Any]:
    """The poll hop's pieces: one running task, polled ``n`` times in a row."""
    from arq import create_pool
    from arq.connections import RedisSettings
    from worker.jobs.common import enqueue_poll, later

    from bench.drift import INSERT
    from bench.poll_hop import PROMPT as HOP_PROMPT
    from core.logging import configure
    from schemas.settings import Settings
    from worker import task_queries
    from worker.context import wctx
    from worker.jobs.poll import poll_task
    from worker.lifecycle import on_shutdown, on_startup

    settings = Settings(
        database_url=infra.pg.url,
        redis_url=infra.redis.url,
        data_dir=infra.base / "data",
        upstream_kind="simulator",
        upstream_base_url=sim_url,
        upstream_api_key=SIM_KEY,
        poll_first_delay=0,
        poll_min_interval=0.001,
        poll_max_interval=0.001,
        log_format="json",
        log_level="INFO",
    )
    real_stderr, sys.stderr = sys.stderr, devnull
    try:
        configure("json", "INFO")
        redis = await create_pool(RedisSettings.from_dsn(infra.redis.url))
        ctx: dict[str, Any] = {"settings": settings, "redis": redis}
        await on_startup(ctx)
        context = wctx(ctx)
        # The create part seeded the runtime config first: point it at the simulator.
        from schemas.config import RuntimeConfigPatch

        config = await context.config.update(
            RuntimeConfigPatch(
                upstream_kind="simulator", upstream_base_url=sim_url, upstream_api_key=SIM_KEY
            )
        )
        # Held for the whole measurement; on_shutdown closes every client.
        upstream = await contextlib.AsyncExitStack().enter_async_context(
            context.upstreams.lease(config, None)
        )
        from datetime import UTC, datetime

        import asyncpg

        submitted = await upstream.submit(
            __import__("worker.upstream", fromlist=["SubmitRequest"]).SubmitRequest(
                model="veo3", prompt=HOP_PROMPT, enhance_prompt=False, images=[]
            )
        )
        now = datetime.now(UTC)
        conn = await asyncpg.connect(infra.pg.dsn)
        try:
            far = datetime.fromtimestamp(time.time() + 3600, UTC)
            await conn.execute(INSERT, "video_hop", submitted.task_id, HOP_PROMPT, now, far)
        finally:
            await conn.close()
        attempt = [0]

        async def whole(i: int) -> None:
            result = await poll_task(ctx, "video_hop", attempt[0])
            assert result == "pending", result
            attempt[0] += 1

        async def load(i: int) -> None:
            await task_queries.load(context.engine, "video_hop")

        async def poll(i: int) -> None:
            await upstream.poll(submitted.task_id)

        async def update(i: int) -> None:
            task = await task_queries.load(context.engine, "video_hop")
            async with context.engine.begin() as c:
                await task_queries.advance_poll(
                    c, task, updated_at=now, next_attempt_at=later(15.0)
                )
            attempt[0] = task.polls + 1

        async def enqueue(i: int) -> None:
            await enqueue_poll(context, f"video_bd{i}", 0, 0.001)

        try:
            return {
                "poll_task (whole hop, no ARQ around it)": await _timed(whole, n),
                "task_queries.load (connect, pre-ping, SELECT * , rollback)": await _timed(load, n),
                "upstream.poll (httpx GET to the simulator)": await _timed(poll, n),
                "load + advance_poll transaction": await _timed(update, n),
                "ARQ enqueue_job (next poll, deferred)": await _timed(enqueue, n),
            }
        finally:
            await on_shutdown(ctx)
            await redis.aclose()
    finally:
        sys.stderr = real_stderr


def run(n: int = 300) -> dict[str, Any]:
    started = time.monotonic()
    with Infra() as infra:
        infra.migrate()
        infra.psql(seed_accounts_sql(USERS, 2_000_000_000))
        for key, value in infra.env().items():
            if key.startswith("GOOGLE_VIDEO_"):
                os.environ[key] = value
        try:
            import uvloop

            runner: Callable[[Awaitable[Any]], Any] = uvloop.run
        except ImportError:
            runner = asyncio.run
        sim, sim_url = start_simulator(infra)
        try:
            with open(os.devnull, "w") as devnull:  # noqa: PTH123
                pieces = runner(_main(infra, n, devnull))
                hop = runner(_hop_main(infra, sim_url, n, devnull))
        finally:
            sim.stop()
    log(f"breakdown: {n} calls per piece in {time.monotonic() - started:.0f} s")
    return {
        "n": n,
        "create": pieces,
        "poll_hop": hop,
        "wall_seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    with contextlib.suppress(BrokenPipeError):
        print(json.dumps(run(args.n), indent=2))


if __name__ == "__main__":
    main()
