"""The reference the create path is measured against (docs/architecture.md), plus the upper
bound.

``POST /v1/videos``: what a create must do at least, written with raw asyncpg on the
project's own tables: a cached API-key lookup, then in ONE transaction the conditional
credit UPDATE, the task INSERT and the ledger INSERT, then the ARQ enqueue of the submit
job; answers a JSON video object built as a plain dict.

``POST /bare``: parse the same JSON body and answer a small JSON object: Starlette +
uvicorn with nothing behind them, the ceiling of any endpoint in one process.

Run: ``python -m bench.ref_app --port P --dsn postgresql://… --redis redis://…``
(one process, uvicorn on uvloop + httptools, like ``google-video api``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import uvicorn
from arq import create_pool
from arq.connections import RedisSettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.queue_codec import ARQ_CODEC

PRICES = {"veo3": 100, "veo3-fast": 80, "veo3-pro": 150, "veo2": 80}
KEY_TTL = 5.0

HOLD = """
UPDATE accounts SET balance = balance - $1, held = held + $1, updated_at = $4
WHERE client_id = $2 AND "user" = $3 AND balance >= $1
RETURNING balance, held
"""
INSERT_TASK = """
INSERT INTO video_tasks (
    id, client_id, "user", task_type, status, model, prompt, enhance_prompt, aspect_ratio,
    seed, images, input_refs, progress, storage_status, price, request_snapshot,
    upstream_response, metadata, webhook_url, polls, submit_attempts,
    created_at, updated_at, next_attempt_at
) VALUES (
    $1, $2, $3, 'text_to_video', 'queued', $4, $5, false, $6,
    NULL, '[]', '[]', 0, 'pending', $7, $8,
    '{}', '{}', NULL, 0, 0,
    $9, $9, $9
)
"""
INSERT_ENTRY = """
INSERT INTO credit_entries (client_id, "user", task_id, kind, amount, balance_after, held_after, at)
VALUES ($1, $2, $3, 'hold', $4, $5, $6, $7)
"""
KEY_LOOKUP = "SELECT client_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"


def new_id(prefix: str) -> str:
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def build_app(dsn: str, redis_url: str, pool_size: int) -> Starlette:
    state: dict[str, Any] = {}
    keys: dict[str, tuple[str | None, float]] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The product's engine: pool_size + max_overflow connections at most.
        state["pg"] = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=2 * pool_size)
        state["queue"] = await create_pool(RedisSettings.from_dsn(redis_url), **ARQ_CODEC)
        try:
            yield
        finally:
            await state["queue"].aclose()
            await state["pg"].close()

    async def client_of(request: Request) -> str | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            return None
        digest = hashlib.sha256(key.encode()).hexdigest()
        now = time.monotonic()
        hit = keys.get(digest)
        if hit is None or hit[1] < now:
            client = await state["pg"].fetchval(KEY_LOOKUP, digest)
            keys[digest] = hit = (client, now + KEY_TTL)
        return hit[0]

    async def create(request: Request) -> Response:
        client = await client_of(request)
        if client is None:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        data = json.loads(await request.body())
        prompt = data["prompt"]
        model = data.get("model") or "veo3"
        user = data.get("user") or client
        price = PRICES[model]
        task_id = new_id("video")
        now = datetime.now(UTC)
        snapshot = json.dumps({"prompt": prompt, "model": model, "user": user, "image_count": 0})
        async with state["pg"].acquire() as conn, conn.transaction():
            after = await conn.fetchrow(HOLD, price, client, user, now)
            if after is None:
                return JSONResponse({"error": "insufficient_credits"}, status_code=402)
            await conn.execute(
                INSERT_TASK, task_id, client, user, model, prompt, "16:9", price, snapshot, now
            )
            await conn.execute(
                INSERT_ENTRY, client, user, task_id, price, after["balance"], after["held"], now
            )
        await state["queue"].enqueue_job("submit_task", task_id, _job_id=f"submit:{task_id}")
        created = int(now.timestamp())
        return JSONResponse(
            {
                "id": task_id,
                "object": "video",
                "model": model,
                "status": "queued",
                "progress": 0,
                "created_at": created,
                "completed_at": None,
                "expires_at": None,
                "prompt": prompt,
                "seconds": "8",
                "size": "1280x720",
                "error": None,
                "user": user,
                "price": price,
            }
        )

    async def bare(request: Request) -> Response:
        data = json.loads(await request.body())
        return JSONResponse({"ok": True, "user": data.get("user")})

    return Starlette(
        routes=[
            Route("/v1/videos", create, methods=["POST"]),
            Route("/bare", bare, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args()
    uvicorn.run(
        build_app(args.dsn, args.redis, args.pool_size),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
    )


if __name__ == "__main__":
    main()
