"""Clients for the video providers: one interface, one error tree, a registry of providers
(one package each under this folder, see `registry`)."""

from __future__ import annotations

from worker.upstream.base import (
    DownloadStream,
    Failure,
    ImageInput,
    InlineImage,
    PollResult,
    RemoteImage,
    SubmitRequest,
    SubmitResult,
    Upstream,
    UpstreamState,
)
from worker.upstream.errors import (
    AmbiguousSubmitError,
    OperatorProblemError,
    PermanentUpstreamError,
    TaskNotFoundError,
    TransientUpstreamError,
    UpstreamError,
)
from worker.upstream.registry import make_upstream

__all__ = [
    "AmbiguousSubmitError",
    "DownloadStream",
    "Failure",
    "ImageInput",
    "InlineImage",
    "OperatorProblemError",
    "PermanentUpstreamError",
    "PollResult",
    "RemoteImage",
    "SubmitRequest",
    "SubmitResult",
    "TaskNotFoundError",
    "TransientUpstreamError",
    "Upstream",
    "UpstreamError",
    "UpstreamState",
    "make_upstream",
]
