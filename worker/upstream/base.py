"""What every upstream client offers, independent of the provider's wire format."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from schemas.catalogue import ImageRole
from schemas.problems import FailureCode


@dataclass(frozen=True)
class RemoteImage:
    """An input image the provider may fetch itself: the https URL the caller gave."""

    role: ImageRole
    url: str


@dataclass(frozen=True)
class InlineImage:
    """An input image's bytes (uploaded or given inline), for the provider to inline."""

    role: ImageRole
    mime: str
    data: bytes = field(repr=False)


ImageInput = RemoteImage | InlineImage


@dataclass(frozen=True)
class SubmitRequest:
    """One video job as sent upstream.

    `model` is the provider's id for the model. Optional fields are sent only when set:
    the caller (the model catalogue) decides which models take `aspect_ratio`,
    `resolution` (``720p`` / ``1080p``, where the provider has a field for it),
    `enable_upsample` (the gateway's way to 1080p), `duration_seconds`,
    `negative_prompt` and `person_generation`; a provider without a field for one of
    them ignores it (the catalogue refused it at create). `seed` is sent only when > 0,
    and only by a provider that takes it. Each image carries its role; the provider places
    and encodes it as its protocol wants.
    """

    model: str
    prompt: str
    enhance_prompt: bool
    images: list[ImageInput] = field(default_factory=list)
    aspect_ratio: str | None = None
    enable_upsample: bool | None = None
    seed: int | None = None
    notify_hook: str | None = None
    resolution: str | None = None
    duration_seconds: int | None = None
    negative_prompt: str | None = None
    person_generation: str | None = None


@dataclass(frozen=True)
class SubmitResult:
    task_id: str
    raw: dict[str, Any]


class UpstreamState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Failure:
    """How a task ended upstream without a video: our failure code, the provider's text."""

    code: FailureCode
    message: str


@dataclass(frozen=True)
class PollResult:
    """One look at an upstream task.

    `SUCCEEDED` with `video_url` None is not done yet: the caller keeps polling for a
    short, bounded grace -- unless `safety_filtered` says the video was removed by a safety
    filter and will never come. `UNKNOWN` covers statuses this client does not recognise
    (keep polling until the task's deadline). `fail_reason` and `fail_code` are the
    provider's own text and machine code for a failure, verbatim. `video_urls` are every
    URL that may be the video, best first (`video_url` is the first): the caller may skip
    one that is its own input, or whose download is not a video.
    """

    state: UpstreamState
    raw_status: str
    progress: int | None
    video_url: str | None
    fail_reason: str | None
    submit_time: datetime | None
    start_time: datetime | None
    finish_time: datetime | None
    raw: dict[str, Any]
    fail_code: str | None = None
    safety_filtered: bool = False
    video_urls: tuple[str, ...] = ()

    def failure(self) -> Failure | None:
        """The failure this answer settles, or None while a video may still come.

        `FAILED` -> ``upstream_failed`` (``safety_filtered`` when the answer says a safety
        filter removed the video); `SUCCEEDED` without a URL but with the safety-filter
        signs -> ``safety_filtered`` at once.
        """
        if self.state == UpstreamState.FAILED:
            code = FailureCode.SAFETY_FILTERED if self.safety_filtered else None
            reason = self.fail_reason or f"The upstream reported status {self.raw_status!r}."
            return Failure(code or FailureCode.UPSTREAM_FAILED, reason)
        if self.state == UpstreamState.SUCCEEDED and not self.video_url and self.safety_filtered:
            reason = self.fail_reason or "A safety filter removed the generated video."
            return Failure(FailureCode.SAFETY_FILTERED, reason)
        return None


@dataclass(frozen=True)
class DownloadStream:
    """An open download. `content_length` is None when the server did not say."""

    content_type: str
    content_length: int | None
    chunks: AsyncIterator[bytes]


class Upstream(Protocol):
    """A video provider. Every method raises only `UpstreamError` subclasses."""

    async def submit(self, req: SubmitRequest) -> SubmitResult: ...

    async def poll(self, task_id: str) -> PollResult: ...

    def download(self, url: str) -> AbstractAsyncContextManager[DownloadStream]: ...

    async def check(self) -> None:
        """Prove the key works without creating a paid job (``POST /v1/admin/config/test``).

        Returns only when the provider authenticated the key. Raises
        `OperatorProblemError` (cause ``auth`` or ``quota``) when it refused the key, and any
        other `UpstreamError` for anything else, with `status` None when no answer came
        (`worker.upstream.check` reads these the same way for every provider).
        """
        ...

    async def aclose(self) -> None: ...
