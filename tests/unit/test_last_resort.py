"""An exception no handler expects: one log line with its traceback, and a 500
problem+json that carries the request id and closes the connection (the app's own
middleware, on a route added for the test)."""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from schemas.settings import Settings
from service.app import create_app


async def broken(_request: Request) -> Response:
    raise RuntimeError("a bug")


async def broken_midway(_request: Request) -> Response:
    async def body():  # type: ignore[no-untyped-def]
        yield b"partial"
        raise RuntimeError("a bug after the answer started")

    return StreamingResponse(body())


def app_with_bugs():  # type: ignore[no-untyped-def]
    app = create_app(Settings(environment="test"))
    app.router.routes.append(Route("/bug", broken))
    app.router.routes.append(Route("/bug-midway", broken_midway))
    return app


async def test_an_unexpected_error_is_a_500_problem_that_closes_the_connection():
    transport = httpx.ASGITransport(app=app_with_bugs(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with capture_logs() as logs:
            response = await client.get("/bug", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "req-42"
    assert response.headers["connection"] == "close"
    assert response.json()["code"] == "internal_error"
    assert [entry["event"] for entry in logs] == ["unhandled_error", "http_request"]
    assert logs[0]["route"] == "/bug" and logs[0]["exc_info"] is True
    assert (logs[1]["route"], logs[1]["status"]) == ("/bug", 500)


async def test_an_error_after_the_answer_started_is_left_to_the_server():
    transport = httpx.ASGITransport(app=app_with_bugs(), raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        try:
            await client.get("/bug-midway")
        except RuntimeError as exc:
            assert "after the answer started" in str(exc)
        else:
            raise AssertionError("the server must see the error and drop the connection")
