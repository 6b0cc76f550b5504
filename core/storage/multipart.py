"""One S3 multipart upload, with a bounded number of parts in flight while the next fills."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ParamSpec, Protocol, TypeVar

import structlog

from core.storage.base import StorageError
from core.storage.s3_checksums import ChecksumAlgorithm, checksum_member

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        CompletedPartTypeDef,
        CreateMultipartUploadRequestTypeDef,
        UploadPartOutputTypeDef,
        UploadPartRequestTypeDef,
    )

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
    """Parts are numbered in the order they are added and upload concurrently; the caller
    bounds how many are in flight (``core.storage.blocks``: a part's buffer is reused only
    once ``done`` has run). The first part that fails fails the upload: ``add_part`` and
    ``complete`` raise its error.

    With ``checksum_algorithm`` the upload is created with it, botocore computes each
    part's checksum in that algorithm (the store checks it), and the complete lists each
    part's checksum as the store answered it: AWS S3 refuses to complete a COMPOSITE upload
    without them (API reference, CompletedPart; "Checking object integrity")."""

    def __init__(
        self,
        client: S3Client,
        call: Call,
        bucket: str,
        key: str,
        upload_id: str,
        checksum_algorithm: ChecksumAlgorithm | None = None,
    ) -> None:
        self._client = client
        self._call = call
        self._bucket = bucket
        self._key = key
        self._upload_id = upload_id
        self._checksum_algorithm = checksum_algorithm
        self._parts: list[CompletedPartTypeDef] = []
        self._started = 0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._failed: BaseException | None = None

    @classmethod
    async def start(
        cls,
        client: S3Client,
        call: Call,
        bucket: str,
        key: str,
        content_type: str,
        checksum_algorithm: ChecksumAlgorithm | None = None,
    ) -> MultipartUpload:
        request: CreateMultipartUploadRequestTypeDef = {
            "Bucket": bucket,
            "Key": key,
            "ContentType": content_type,
        }
        if checksum_algorithm is not None:
            request["ChecksumAlgorithm"] = checksum_algorithm
        response = await call(client.create_multipart_upload, **request)
        return cls(client, call, bucket, key, response["UploadId"], checksum_algorithm)

    def add_part(self, data: bytes, done: Callable[[], Awaitable[None]]) -> None:
        """Start uploading the next part in the background; ``done()`` runs when it is
        stored or has failed (the caller releases ``data`` there). Raises the error of a
        part that already failed (``done`` is then not called: the caller still owns
        ``data``)."""
        if self._failed is not None:
            raise self._failed
        if self._started >= MAX_PARTS:
            raise StorageError(f"S3 upload of {self._key} needs more than {MAX_PARTS} parts")
        self._started += 1
        task = asyncio.create_task(self._upload(self._started, data, done))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def complete(self) -> None:
        if self._in_flight:
            # Shielded: if our caller is cancelled, abort() still waits for these parts.
            await asyncio.shield(asyncio.gather(*self._in_flight))
        if self._failed is not None:
            raise self._failed
        await self._call(
            self._client.complete_multipart_upload,
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": sorted(self._parts, key=lambda p: p["PartNumber"])},
        )

    async def abort(self) -> None:
        """Discard the upload; never raises, so the caller's own error propagates."""
        if self._in_flight:
            # S3 may keep a part that was still uploading during the abort: wait for them.
            await asyncio.wait(list(self._in_flight))
        try:
            await self._call(
                self._client.abort_multipart_upload,
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
            )
        except StorageError as exc:
            log.warning("s3_abort_failed", key=self._key, upload_id=self._upload_id, error=str(exc))

    async def _upload(self, number: int, data: bytes, done: Callable[[], Awaitable[None]]) -> None:
        request: UploadPartRequestTypeDef = {
            "Bucket": self._bucket,
            "Key": self._key,
            "UploadId": self._upload_id,
            "PartNumber": number,
            "Body": data,
        }
        if self._checksum_algorithm is not None:
            request["ChecksumAlgorithm"] = self._checksum_algorithm
        try:
            response = await self._call(self._client.upload_part, **request)
            self._parts.append(self._completed(number, response))
        except Exception as exc:  # noqa: BLE001  (kept, raised by add_part/complete)
            # Kept for add_part/complete, not raised here: nobody awaits a failed part
            # before the next add_part, and an unretrieved task error would be logged.
            if self._failed is None:
                self._failed = exc
        finally:
            await done()

    def _completed(self, number: int, response: UploadPartOutputTypeDef) -> CompletedPartTypeDef:
        part: CompletedPartTypeDef = {"ETag": response["ETag"], "PartNumber": number}
        if self._checksum_algorithm is not None:
            member = checksum_member(self._checksum_algorithm)
            # Absent only from a store that ignored the algorithm: it checks none either.
            if checksum := response.get(member):
                part[member] = checksum
        return part
