"""One S3 multipart upload, with one part in flight while the next one fills."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ParamSpec, Protocol, TypeVar

import structlog

from core.storage.base import StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MAX_PARTS = 10_000

log = structlog.get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class Call(Protocol):
    """Runs a blocking boto3 call off the event loop and translates its errors."""

    def __call__(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]: ...


class MultipartUpload:
    """Parts go up in order, one at a time, while the caller fills the next one."""

    def __init__(self, client: S3Client, call: Call, bucket: str, key: str, upload_id: str) -> None:
        self._client = client
        self._call = call
        self._bucket = bucket
        self._key = key
        self._upload_id = upload_id
        self._parts: list[CompletedPartTypeDef] = []
        self._started = 0
        self._in_flight: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, client: S3Client, call: Call, bucket: str, key: str, content_type: str
    ) -> MultipartUpload:
        response = await call(
            client.create_multipart_upload, Bucket=bucket, Key=key, ContentType=content_type
        )
        return cls(client, call, bucket, key, response["UploadId"])

    async def wait_idle(self) -> None:
        """Wait until the previous part is stored (raising its error), before copying the next."""
        if self._in_flight is not None:
            # Shielded: if our caller is cancelled, abort() still waits for this part.
            await asyncio.shield(self._in_flight)
            self._in_flight = None

    def add_part(self, data: bytes) -> None:
        """Start uploading the next part in the background; call wait_idle() first."""
        if self._in_flight is not None:
            raise RuntimeError("add_part() while a part is in flight; await wait_idle() first")
        if self._started >= MAX_PARTS:
            raise StorageError(f"S3 upload of {self._key} needs more than {MAX_PARTS} parts")
        self._started += 1
        self._in_flight = asyncio.create_task(self._upload(self._started, data))

    async def complete(self) -> None:
        await self.wait_idle()
        await self._call(
            self._client.complete_multipart_upload,
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": sorted(self._parts, key=lambda p: p["PartNumber"])},
        )

    async def abort(self) -> None:
        """Discard the upload; never raises, so the caller's own error propagates."""
        task = self._in_flight
        if task is not None:
            # S3 may keep a part that was still uploading during the abort: wait for it.
            await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # consumed here; the caller's error is the one that matters
        try:
            await self._call(
                self._client.abort_multipart_upload,
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
            )
        except StorageError as exc:
            log.warning("s3_abort_failed", key=self._key, upload_id=self._upload_id, error=str(exc))

    async def _upload(self, number: int, data: bytes) -> None:
        response = await self._call(
            self._client.upload_part,
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
        )
        self._parts.append({"ETag": response["ETag"], "PartNumber": number})
