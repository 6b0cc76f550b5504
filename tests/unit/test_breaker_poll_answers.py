"""Breaker probes of the poll answer's safety-filter walk, now made only for an ended
task (``parse_poll_answer``): what ``PollResult.failure`` settles is unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.problems import FailureCode
from worker.upstream.base import UpstreamState
from worker.upstream.gateway.protocol import parse_poll_answer

SIGNS: dict[str, Any] = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["child"]}
VIDEO = "https://cdn.example/out/video.mp4"


@pytest.mark.parametrize("status", ["IN_PROGRESS", "NOT_START", "failed_retrying", 7])
def test_a_task_still_going_with_filter_signs_settles_nothing(status: object) -> None:
    body = {"code": "success", "data": {"task_id": "t", "status": status, "data": SIGNS}}
    result = parse_poll_answer(200, body)
    assert result.state in (UpstreamState.PENDING, UpstreamState.RUNNING, UpstreamState.UNKNOWN)
    assert result.failure() is None


def test_an_unknown_status_promoted_with_a_video_and_filter_signs_is_a_success() -> None:
    data = {"task_id": "t", "status": "weird", "data": {"video_url": VIDEO, **SIGNS}}
    result = parse_poll_answer(200, {"code": "success", "data": data})
    assert (result.state, result.video_url, result.failure()) == (
        UpstreamState.SUCCEEDED,
        VIDEO,
        None,
    )


@pytest.mark.parametrize("status", ["SUCCESS", "FAILURE"])
def test_an_ended_task_with_filter_signs_is_safety_filtered(status: str) -> None:
    body = {"code": "success", "data": {"task_id": "t", "status": status, "data": SIGNS}}
    failure = parse_poll_answer(200, body).failure()
    assert failure is not None
    assert failure.code == FailureCode.SAFETY_FILTERED
    assert failure.message == "child"
