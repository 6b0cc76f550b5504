"""Webhooks consumers can trust: every delivery verifies with the `standardwebhooks`
package and with the official openai SDK; retries keep the webhook-id; 410 disables."""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections.abc import Iterator

import openai
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.eventually import eventually
from tests.integration.e2e.helpers import create, finished
from tests.integration.receiver import Receiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


async def _endpoint(client, url: str, **extra) -> dict:
    response = await client.post("/v1/webhook-endpoints", json={"url": url, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _verify_both(secret: str, received) -> dict:
    headers = {k: v for k, v in received.headers.items() if k.startswith("webhook-")}
    event = Webhook(secret).verify(received.body, headers)
    unwrapped = openai.OpenAI(api_key="unused").webhooks.unwrap(
        received.body, headers, secret=secret
    )
    assert unwrapped.type == event["type"] and unwrapped.id == event["id"]
    return dict(event)


async def test_completed_event_verifies_with_both_libraries(acme, receiver):
    endpoint = await _endpoint(acme, receiver.url("/done"))
    assert endpoint["secret"].startswith("whsec_")
    assert "secret" not in (await acme.get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()
    video = await finished(acme, (await create(acme, "hooked [sim:duration=1]"))["id"])
    (received,) = await receiver.wait_for("/done", 1)
    event = _verify_both(endpoint["secret"], received)
    assert event["type"] == "video.completed" and event["object"] == "event"
    assert event["id"].startswith("evt_") and received.headers["webhook-id"] == event["id"]
    assert event["data"]["id"] == video["id"] and event["data"]["status"] == "completed"


async def test_tampered_body_or_old_timestamp_fails_verification(acme, receiver):
    endpoint = await _endpoint(acme, receiver.url("/tamper"))
    await finished(acme, (await create(acme, "tamper [sim:duration=1]"))["id"])
    (received,) = await receiver.wait_for("/tamper", 1)
    headers = {k: v for k, v in received.headers.items() if k.startswith("webhook-")}
    tampered = received.body.replace(b'"completed"', b'"failed"', 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(tampered, headers)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        openai.OpenAI(api_key="x").webhooks.unwrap(tampered, headers, secret=endpoint["secret"])
    old = {**headers, "webhook-timestamp": str(int(time.time()) - 3600)}
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(received.body, old)


async def test_failed_and_cancelled_events(acme, receiver):
    endpoint = await _endpoint(acme, receiver.url("/ends"))
    await finished(acme, (await create(acme, "bad [sim:duration=1] [sim:fail=nope]"))["id"])
    video = await create(acme, "to cancel [sim:duration=30]")
    await acme.post(f"/v1/videos/{video['id']}/cancel")
    received = await receiver.wait_for("/ends", 2)
    types = sorted(_verify_both(endpoint["secret"], r)["type"] for r in received)
    assert types == ["video.cancelled", "video.failed"]


async def test_enabled_events_filter(acme, receiver):
    await _endpoint(acme, receiver.url("/only-failed"), enabled_events=["video.failed"])
    await finished(acme, (await create(acme, "fine [sim:duration=1]"))["id"])
    await finished(acme, (await create(acme, "bad [sim:duration=1] [sim:fail=x]"))["id"])
    received = await receiver.wait_for("/only-failed", 1)
    await _settled(acme)  # a wrongly sent completed event would have arrived by now
    assert [json.loads(r.body)["type"] for r in receiver.on("/only-failed")] == ["video.failed"]
    assert len(received) == 1


async def test_500_twice_then_200_delivers_three_times_with_one_webhook_id(acme, receiver):
    endpoint = await _endpoint(acme, receiver.url("/flaky"))
    receiver.answer("/flaky", 500, 500, 200)
    await finished(acme, (await create(acme, "flaky receiver [sim:duration=1]"))["id"])
    received = await receiver.wait_for("/flaky", 3)
    assert len({r.headers["webhook-id"] for r in received}) == 1
    for r in received:
        _verify_both(endpoint["secret"], r)
    event_id = received[0].headers["webhook-id"]
    event = await _delivered(acme, event_id)
    (delivery,) = event["deliveries"]
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]
    assert all(a["latency_ms"] >= 0 for a in delivery["attempt_log"])


async def test_410_disables_the_endpoint(acme, receiver):
    endpoint = await _endpoint(acme, receiver.url("/gone"))
    receiver.answer("/gone", 410)
    await finished(acme, (await create(acme, "gone receiver [sim:duration=1]"))["id"])
    await receiver.wait_for("/gone", 1)
    await eventually(
        lambda: _get(acme, f"/v1/webhook-endpoints/{endpoint['id']}"),
        10,
        until=lambda e: not e["enabled"],
        what="the endpoint disabled",
        interval=0.05,
    )
    await finished(acme, (await create(acme, "after gone [sim:duration=1]"))["id"])
    await _settled(acme)  # a delivery to the disabled endpoint would have arrived by now
    assert len(receiver.on("/gone")) == 1


async def test_redirect_is_not_followed(acme, receiver):
    await _endpoint(acme, receiver.url("/moved"))
    receiver.answer("/moved", (302, {"location": receiver.url("/elsewhere")}), 302, 302, 302)
    await finished(acme, (await create(acme, "moved [sim:duration=1]"))["id"])
    await receiver.wait_for("/moved", 4)
    assert receiver.on("/elsewhere") == []


async def test_retry_after_is_honoured(acme, receiver):
    await _endpoint(acme, receiver.url("/slow-down"))
    receiver.answer("/slow-down", (429, {"retry-after": "2"}))
    await finished(acme, (await create(acme, "throttled [sim:duration=1]"))["id"])
    first, second = await receiver.wait_for("/slow-down", 2, deadline=20)
    assert second.at - first.at >= 1.8  # the schedule alone would retry after 0.3 s


async def test_per_request_webhook_url_is_signed_with_client_secret(acme, receiver):
    secret = (await acme.post("/v1/webhook-secret")).json()["secret"]
    video = await create(acme, "direct [sim:duration=1]", webhook_url=receiver.url("/direct"))
    (received,) = await receiver.wait_for("/direct", 1)
    assert _verify_both(secret, received)["data"]["id"] == video["id"]


async def test_rotated_secret_signs_with_old_and_new(acme, receiver):
    endpoint = await _endpoint(acme, receiver.url("/rotated"))
    rotated = (await acme.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")).json()
    assert rotated["secret"] != endpoint["secret"]
    await finished(acme, (await create(acme, "rotation [sim:duration=1]"))["id"])
    (received,) = await receiver.wait_for("/rotated", 1)
    assert len(received.headers["webhook-signature"].split()) == 2
    _verify_both(endpoint["secret"], received)
    _verify_both(rotated["secret"], received)


async def test_sigkill_between_state_change_and_delivery_still_delivers(acme, stack, receiver):
    await _endpoint(acme, receiver.url("/after-kill"))
    receiver.answer("/after-kill", 500)  # first attempt fails; the retry is pending when killed
    video = await create(acme, "killed before delivery [sim:duration=1]")
    await finished(acme, video["id"])
    await receiver.wait_for("/after-kill", 1)
    for proc in stack.workers:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    stack.workers.clear()
    stack.start_worker()
    received = await receiver.wait_for("/after-kill", 2, deadline=30)
    assert received[-1].headers["webhook-id"] == received[0].headers["webhook-id"]


async def test_events_api_lists_and_replays(acme, client_for, receiver):
    endpoint = await _endpoint(acme, receiver.url("/replayed"))
    await finished(acme, (await create(acme, "replay me [sim:duration=1]"))["id"])
    (first,) = await receiver.wait_for("/replayed", 1)
    events = (await acme.get("/v1/events", params={"limit": 100})).json()
    event_id = first.headers["webhook-id"]
    assert event_id in [e["id"] for e in events["data"]]
    replay = await acme.post(f"/v1/events/{event_id}/replay")
    assert replay.status_code == 202
    second = (await receiver.wait_for("/replayed", 2))[1]
    assert second.headers["webhook-id"] == event_id
    _verify_both(endpoint["secret"], second)
    other = await client_for("globex")
    assert (await other.get(f"/v1/events/{event_id}")).status_code == 404
    assert (await other.post(f"/v1/events/{event_id}/replay")).status_code == 404


async def test_endpoints_are_per_client(acme, client_for, receiver):
    endpoint = await _endpoint(acme, receiver.url("/mine"))
    other = await client_for("globex")
    assert (await other.get(f"/v1/webhook-endpoints/{endpoint['id']}")).status_code == 404
    assert (await other.delete(f"/v1/webhook-endpoints/{endpoint['id']}")).status_code == 404
    assert (await other.get("/v1/webhook-endpoints")).json()["data"] == []
    patched = await acme.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"description": "d"})
    assert patched.json()["description"] == "d"
    assert (await acme.delete(f"/v1/webhook-endpoints/{endpoint['id']}")).json()["deleted"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://x.example/hook"},
        {"url": "https://x.example", "enabled_events": ["video.exploded"]},
        {},
    ],
)
async def test_bad_endpoint_registration_is_a_problem(acme, body):
    response = await acme.post("/v1/webhook-endpoints", json=body)
    assert response.status_code == 400 and response.json()["code"] == "validation_error"


async def _get(acme, path: str) -> dict:
    return dict((await acme.get(path)).json())


async def _delivered(acme, event_id: str) -> dict:
    return await eventually(
        lambda: _get(acme, f"/v1/events/{event_id}"),
        10,
        until=lambda event: all(d["status"] == "delivered" for d in event["deliveries"]),
        what=f"every delivery of {event_id} delivered",
        interval=0.05,
    )


async def _deliveries(acme) -> list[dict]:
    """Every delivery recorded for the client's events (one test's worth: tables are
    emptied between tests)."""
    events = (await _get(acme, "/v1/events?limit=100"))["data"]
    return [d for e in events for d in (await _get(acme, f"/v1/events/{e['id']}"))["deliveries"]]


async def _settled(acme) -> None:
    """Wait until no recorded delivery is pending: every request that was going to reach
    a receiver has reached it (the receiver records a request before answering it, and a
    delivery leaves ``pending`` only after the answer)."""
    await eventually(
        lambda: _deliveries(acme),
        10,
        until=lambda deliveries: all(d["status"] != "pending" for d in deliveries),
        what="every delivery settled",
        interval=0.05,
    )


async def test_event_written_with_the_state_change_is_delivered_after_its_job_is_lost(
    acme, stack, redis_url, receiver
):
    """No worker runs while the video ends and Redis then forgets the delivery job: the
    outbox row alone brings the event to the receiver once a worker is back."""
    from redis.asyncio import Redis

    await _endpoint(acme, receiver.url("/outbox"))
    stack.stop_workers()
    video = await create(acme, "ended while no worker runs")
    await acme.post(f"/v1/videos/{video['id']}/cancel")  # the event and its delivery rows
    redis = Redis.from_url(redis_url)
    await redis.flushall()  # ... and the enqueued delivery job is gone
    await redis.aclose()
    stack.start_worker()
    (received,) = await receiver.wait_for("/outbox", 1, deadline=30)
    assert json.loads(received.body)["type"] == "video.cancelled"


async def test_retry_after_zero_cannot_shorten_the_schedule(acme, receiver):
    await _endpoint(acme, receiver.url("/hurry"))
    receiver.answer("/hurry", *[(503, {"retry-after": "0"})] * 3)
    await finished(acme, (await create(acme, "hurry [sim:duration=1]"))["id"])
    received = await receiver.wait_for("/hurry", 4)
    gaps = [b.at - a.at for a, b in itertools.pairwise(received)]
    assert min(gaps) >= 0.3 * 0.9 - 0.02  # each step of the 0.3 s schedule, jitter included


async def test_huge_retry_after_is_clamped_to_the_schedules_end(acme, receiver):
    await _endpoint(acme, receiver.url("/much-later"))
    receiver.answer("/much-later", (429, {"retry-after": "999999999"}))
    await finished(acme, (await create(acme, "much later [sim:duration=1]"))["id"])
    first = (await receiver.wait_for("/much-later", 1))[0]
    event_id = first.headers["webhook-id"]
    event = await eventually(
        lambda: _get(acme, f"/v1/events/{event_id}"),
        10,
        until=lambda e: e["deliveries"][0]["attempts"] == 1,
        what="the first attempt recorded",
        interval=0.05,
    )
    (delivery,) = event["deliveries"]
    assert delivery["status"] == "pending"
    # The stack's schedule (0.3 s x 3, 3 s attempts) ends 0.99 + 3 x 8 s after creation.
    assert delivery["next_attempt_at"] - event["created_at"] <= 25 + 1
