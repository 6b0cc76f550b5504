"""Health at a glance: the figures ``/metrics`` exports (``core.health_numbers``)."""

from __future__ import annotations

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from core.health_numbers import health_numbers
from schemas.problems import Code
from service.console import render, session
from service.context import ctx
from service.errors import ProblemError


async def show(request: Request) -> Response:
    await session.admin(request)
    context = ctx(request)
    try:
        numbers = await health_numbers(context.engine, context.queue, context.settings)
    except (RedisError, OSError, TimeoutError) as exc:
        raise ProblemError(
            Code.UNAVAILABLE, f"Redis cannot be read ({type(exc).__name__}); retry shortly."
        ) from None
    providers = sorted(numbers.recent.calls.items())
    return render.page(request, "health.html", n=numbers, providers=providers)
