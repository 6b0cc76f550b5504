"""A Redis that accepts connections and never answers (stopped with SIGSTOP, swapping):
creates still answer within seconds, durable in the database, instead of waiting as long
as Redis hangs (a tester's 20 s create; the queue client had no command timeout)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from schemas.settings import Settings


@pytest.fixture
def hung_redis() -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # held open, never answered
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


@pytest.fixture
def settings(settings: Settings, hung_redis: str) -> Settings:
    return settings.model_copy(update={"redis_url": hung_redis})


async def test_a_create_answers_while_redis_hangs(acme) -> None:
    started = time.monotonic()
    response = await acme.post("/v1/videos", json={"prompt": "while redis hangs"})
    took = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"
    assert took < 6, took  # rate limit (0.5 s) + enqueue (2 s) at most, not the hang
