"""Contract tests from the shared corpus of real gateway answers.

Every entry of ``<repo>/../shared/upstream-corpus/gateway/manifest.json`` is answered,
with its body, HTTP status and headers, by an ``httpx.MockTransport`` behind the real
``GatewayClient``, so the whole path (status mapping, body parsing, classification) is
exercised. What the client makes of it must equal the entry's ``expected`` (prose in the
manifest, written here as typed data). A corpus file without a row here fails the suite:
a new real-world answer must be interpreted on purpose, never skipped.
"""

from __future__ import annotations

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
from worker.upstream.gateway import GatewayClient

CORPUS = corpus.CORPUS / "gateway"
BASE = "https://gw.example"
TASK = "f0aa213c-c09e-4e19-a0e5-c698fe48acf1"
VIDEO = "https://cdn.example/videos/20250618/a5O3efr3GyiSTIMxAtXYmCWKcNPjBL.mp4"
RAI = (
    "Veo could not generate 1 videos based on the prompt provided. You will not be charged "
    "for this request. Try rephrasing the prompt. If you think this was an error, send "
    "feedback. Support codes: 42237218"
)


# --- what the client can make of an answer --------------------------------------------


@dataclass(frozen=True)
class Submitted:
    task_id: str


@dataclass(frozen=True)
class Running:
    """Keep polling; `unknown` when the status word was not recognised."""

    progress: int | None
    unknown: bool = False


@dataclass(frozen=True)
class Done:
    url: str


@dataclass(frozen=True)
class Failed:
    code: FailureCode
    reason: str


@dataclass(frozen=True)
class Transient:
    """Retry later: the gateway recorded no task (submit) or the task may still run (poll)."""


@dataclass(frozen=True)
class Ambiguous:
    """The submit may have created a paid task: never resubmit blindly."""


@dataclass(frozen=True)
class TaskLost:
    """The gateway does not know the task (terminal after the grace right after submit)."""


@dataclass(frozen=True)
class Rejected:
    """The gateway refused this request: fail the task, release."""

    code: str


@dataclass(frozen=True)
class OperatorProblem:
    """The operator's key or account: fail a submit with a code naming the cause; never
    fail a running task for it."""

    cause: str
    upstream_code: str | None = None


Outcome = (
    Submitted
    | Running
    | Done
    | Failed
    | Transient
    | Ambiguous
    | TaskLost
    | Rejected
    | OperatorProblem
)

EXPECTED: dict[str, Outcome] = {
    "s01_submit_success_doc.json": Submitted(TASK),
    "s02_submit_v2_task_id.json": Submitted("veo3:1756693796-YQVHH4A3Lg"),
    "s03_submit_yunwu_video_create.json": Submitted("jimeng:7391ad0e-9813-48ba-a742-ed0720e44e45"),
    "s04_submit_newapi_gemini_openai_video.json": Submitted("task_Ab12Cd34"),
    "s05_submit_400_invalid_request.json": Rejected("invalid_request"),
    "s06_submit_403_quota_not_enough.json": OperatorProblem("quota", "quota_not_enough"),
    "s07_submit_429_chained_upstream.json": Transient(),
    "s08_submit_429_empty_global_ratelimit.txt": Transient(),
    "s09_submit_429_model_ratelimit.json": Transient(),
    "s10_submit_401_invalid_token.json": OperatorProblem("auth", "new_api_error"),
    "s11_submit_503_no_channel.json": Transient(),
    "s12_submit_500_do_request_failed.json": Transient(),
    "s13_submit_504_nginx_html.html": Ambiguous(),
    "s15_submit_502_empty.txt": Ambiguous(),
    "p01_success_doc.json": Done(VIDEO),
    "p02_not_start.json": Running(0),
    "p03_queued.json": Running(0),
    "p04_in_progress.json": Running(50),
    "p05_failure_rai.json": Failed(FailureCode.UPSTREAM_FAILED, RAI),
    "p06_unknown.json": Running(30, unknown=True),
    "p07_success_no_url_rai.json": Failed(FailureCode.SAFETY_FILTERED, RAI),
    "p08_success_url_in_fail_reason.json": Done(VIDEO),
    "p09_success_result_url.json": Done(VIDEO),
    "p11_v2_flat_success.json": Done(
        "https://cdn.example/videos/20250901/018eg2SgUpHMT6EEuQbfeRLWeUhE75.mp4"
    ),
    "p13_video_query_success_lower.json": Done(VIDEO),
    # error.code "rai_filtered" names the safety filter: the more precise failure code.
    "p15_openai_video_failed.json": Failed(FailureCode.SAFETY_FILTERED, RAI),
    "p16_task_not_exist_400.json": TaskLost(),
    "p17_get_task_failed_500.json": Transient(),
    "p18_429_empty.txt": Transient(),
    "p19_401_token_exhausted.json": OperatorProblem("quota", "new_api_error"),
    "p20_502_nginx_html.html": Transient(),
    "p21_502_empty.txt": Transient(),
    "p22_success_null_data.json": Running(None, unknown=True),
}


# --- the corpus -----------------------------------------------------------------------


MANIFEST = corpus.manifest("gateway")  # loud when the corpus is missing


def test_every_corpus_file_has_an_expected_interpretation_and_every_row_a_file():
    files = {entry["file"] for entry in MANIFEST}

    assert files == set(EXPECTED)
    assert len(files) == len(MANIFEST), "a file is listed twice in the manifest"
    for name in files:
        assert (CORPUS / name).is_file(), name


@pytest.mark.parametrize("entry", MANIFEST, ids=[entry["file"] for entry in MANIFEST])
async def test_the_client_interprets_the_corpus_answer_as_expected(entry: dict[str, Any]):
    assert await interpret(entry) == EXPECTED[entry["file"]], entry["expected"]


# --- driving the real client ----------------------------------------------------------


async def interpret(entry: dict[str, Any]) -> Outcome:
    """Send the entry's request through `GatewayClient`; answer it from the corpus file."""
    op = entry["request"]
    recorded = corpus.answer("gateway", entry)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(recorded.status, content=recorded.body, headers=recorded.headers)

    async with GatewayClient(BASE, "sk-test", transport=httpx.MockTransport(answer)) as client:
        try:
            if op == "submit":
                result = await client.submit(SubmitRequest("veo3", "a fox", enhance_prompt=False))
                outcome: Outcome = Submitted(result.task_id)
            else:
                assert op == "poll", op
                outcome = _poll_outcome(await client.poll(TASK))
        except TaskNotFoundError:
            outcome = TaskLost()
        except OperatorProblemError as exc:
            outcome = OperatorProblem(exc.cause, exc.upstream_code)
        except PermanentUpstreamError as exc:
            outcome = Rejected(exc.code)
        except TransientUpstreamError:
            outcome = Transient()
        except AmbiguousSubmitError:
            outcome = Ambiguous()
    [request] = seen
    assert (request.method, request.url.path) == (
        ("POST", "/google/v1/models/veo/videos")
        if op == "submit"
        else ("GET", f"/google/v1/tasks/{TASK}")
    )
    return outcome


def _poll_outcome(result: Any) -> Outcome:
    failure = result.failure()
    if failure is not None:
        return Failed(failure.code, failure.message)
    if result.state is UpstreamState.SUCCEEDED:
        assert result.video_url, "a success without a video must say so, not pass as done"
        return Done(result.video_url)
    return Running(result.progress, unknown=result.state is UpstreamState.UNKNOWN)
