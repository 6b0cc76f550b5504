"""Contract tests from the shared corpus of Gemini API answers.

Every entry of ``<repo>/../shared/upstream-corpus/gemini/manifest.json`` is answered, with
its body and HTTP status, by an ``httpx.MockTransport`` behind the real ``GeminiClient``;
what the client makes of it must equal the entry's ``expected`` (written here as typed
data). An entry marked "submit or poll" is played as both. A corpus file without a row
here fails the suite: a new answer must be interpreted on purpose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from schemas.problems import FailureCode
from tests import corpus
from worker.upstream import (
    AmbiguousSubmitError,
    OperatorProblemError,
    PermanentUpstreamError,
    SubmitRequest,
    TaskNotFoundError,
    TransientUpstreamError,
    UpstreamState,
)
from worker.upstream.gemini import GeminiClient

CORPUS = corpus.CORPUS / "gemini"
BASE = "https://generativelanguage.googleapis.com"
KEY = "AIza-test-key"
OPERATION = "models/veo-3.1-generate-preview/operations/vz341u0pmdlc"
VIDEO = "https://generativelanguage.googleapis.com/v1beta/files/abc123:download?alt=media"
RAI = (
    "We encountered an issue with the audio for your prompt, which means we could not create "
    "your video. This can sometimes happen due to our safety filters or other processing "
    "issues. Please modify your request and try again. You have not been charged for this "
    "attempt."
)


@dataclass(frozen=True)
class Submitted:
    operation: str


@dataclass(frozen=True)
class Running:
    pass


@dataclass(frozen=True)
class Done:
    url: str


@dataclass(frozen=True)
class Failed:
    code: FailureCode
    reason: str


@dataclass(frozen=True)
class Transient:
    pass


@dataclass(frozen=True)
class Other:
    """Anything the corpus never expects (kept readable in a failure)."""

    what: str


Outcome = Submitted | Running | Done | Failed | Transient | Other

EXPECTED: dict[tuple[str, str], Outcome] = {
    ("g01_submit.json", "submit"): Submitted(OPERATION),
    ("g02_running.json", "poll"): Running(),
    ("g03_done_ok.json", "poll"): Done(VIDEO),
    ("g04_done_rai.json", "poll"): Failed(FailureCode.SAFETY_FILTERED, RAI),
    ("g05_done_error.json", "poll"): Failed(
        FailureCode.UPSTREAM_FAILED, "Internal error encountered."
    ),
    ("g06_429.json", "submit"): Transient(),
    ("g06_429.json", "poll"): Transient(),
}

MANIFEST = corpus.manifest("gemini")  # loud when the corpus is missing
CASES = [
    (entry, op)
    for entry in MANIFEST
    for op in (("submit", "poll") if entry["request"] == "submit or poll" else (entry["request"],))
]


def test_every_corpus_file_has_an_expected_interpretation_and_every_row_a_file():
    assert {(entry["file"], op) for entry, op in CASES} == set(EXPECTED)
    for entry in MANIFEST:
        assert (CORPUS / entry["file"]).is_file(), entry["file"]


@pytest.mark.parametrize(
    ("entry", "op"), CASES, ids=[f"{entry['file']}-{op}" for entry, op in CASES]
)
async def test_the_client_interprets_the_corpus_answer_as_expected(entry: dict[str, Any], op: str):
    assert await interpret(entry, op) == EXPECTED[(entry["file"], op)], entry["expected"]


async def test_a_done_answer_keeps_a_snapshot_and_a_finish_time_but_invents_no_progress():
    recorded = corpus.answer("gemini", _entry("g03_done_ok.json"))
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=recorded.body))
    async with GeminiClient(BASE, KEY, transport=transport) as client:
        result = await client.poll(OPERATION)

    assert result.raw == json.loads(recorded.body)
    assert result.progress is None and result.finish_time is not None


async def interpret(entry: dict[str, Any], op: str) -> Outcome:
    """Play `op` through `GeminiClient`; answer it from the corpus file."""
    recorded = corpus.answer("gemini", entry)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(recorded.status, content=recorded.body, headers=recorded.headers)

    async with GeminiClient(BASE, KEY, transport=httpx.MockTransport(answer)) as client:
        try:
            if op == "submit":
                request = SubmitRequest("veo-3.1-generate-preview", "a fox", enhance_prompt=False)
                outcome: Outcome = Submitted((await client.submit(request)).task_id)
            else:
                outcome = _poll_outcome(await client.poll(OPERATION))
        except TransientUpstreamError:
            outcome = Transient()
        except (
            TaskNotFoundError,
            OperatorProblemError,
            PermanentUpstreamError,
            AmbiguousSubmitError,
        ) as exc:
            outcome = Other(repr(exc))
    [request] = seen
    assert request.headers["x-goog-api-key"] == KEY
    assert (request.method, request.url.path) == (
        ("POST", "/v1beta/models/veo-3.1-generate-preview:predictLongRunning")
        if op == "submit"
        else ("GET", f"/v1beta/{OPERATION}")
    )
    return outcome


def _poll_outcome(result: Any) -> Outcome:
    failure = result.failure()
    if failure is not None:
        return Failed(failure.code, failure.message)
    if result.state is UpstreamState.SUCCEEDED:
        assert result.video_url, "a success without a video must say so, not pass as done"
        return Done(result.video_url)
    if result.state is UpstreamState.RUNNING:
        return Running()
    return Other(str(result.state))


def _entry(name: str) -> dict[str, Any]:
    return next(entry for entry in MANIFEST if entry["file"] == name)
