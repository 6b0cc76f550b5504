"""S3-compatible object storage (AWS S3, MinIO, Tencent COS, R2, moto) through boto3.

boto3 blocks, so every call runs on this storage's own thread pool, sized like the
connection pool; the event loop never waits on the network.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from typing import TYPE_CHECKING, Literal, ParamSpec, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.storage.base import (
    DEFAULT_CHUNK_SIZE,
    ObjectNotFound,
    StorageError,
    StoredObject,
    check_key,
    check_prefix,
    check_range,
)
from core.storage.blocks import Blocks
from core.storage.multipart import MultipartUpload
from core.storage.s3_checksums import ChecksumAlgorithm, use_content_md5
from core.storage.s3_errors import error_code, http_status, translate_error
from core.storage.streams import iter_chunks

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType
    from mypy_boto3_s3.type_defs import PutObjectRequestTypeDef

P = ParamSpec("P")
T = TypeVar("T")

MIN_PART_SIZE = 5 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
# Parts uploading at once while the next fills: one leaves the stream waiting on each
# part's round trip; three keep a store's buffers at 4 x 8 MiB, within the 64 MiB budget a
# 1 GiB store may grow a worker by (bench/storing.py measures it).
PARTS_IN_FLIGHT = 3
MAX_CONNECTIONS = 16
DEFAULT_REGION = "us-east-1"


AddressingStyle = Literal["auto", "path", "virtual"]


class S3Storage:
    """Objects in ``bucket`` under ``prefix``, through boto3.

    ``endpoint_url`` is where this process reaches the store; ``public_endpoint_url``, if
    set, is the address clients download from: presigned URLs are signed for that host (a
    second client with the same credentials, region and addressing), everything else goes
    to ``endpoint_url``. ``addressing_style`` None means path-style with a custom endpoint
    (MinIO, moto and IPs rarely resolve bucket subdomains) and boto3's choice otherwise.

    ``checksum_algorithm`` None sends only the checksums S3 requires, as Content-MD5
    (``core.storage.s3_checksums``), which every S3-compatible store accepts. An algorithm
    (``"CRC32"``, …) turns on S3's flexible checksums: botocore computes that checksum of
    each PutObject and UploadPart body and the store checks it; a multipart upload is
    created with it and completed with each part's checksum, so the object's is a
    checksum of the part checksums (COMPOSITE, reported as ``…-<parts>``; CRC64NVME is
    FULL_OBJECT); the other requests that require a checksum (DeleteObjects) get
    botocore's own CRC32. Over https botocore
    then sends an upload's checksum as an ``aws-chunked`` trailer and signs
    ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` instead of the body's SHA-256 (botocore's
    ``httpchecksum`` and ``auth.S3SigV4Auth``); over http it still signs the body. Only for
    stores that accept flexible checksums: one that refuses them fails each upload with a
    StorageError naming the setting. CRC32C and CRC64NVME need the awscrt package
    (``schemas.settings`` refuses them without it).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        public_endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        addressing_style: AddressingStyle | None = None,
        checksum_algorithm: ChecksumAlgorithm | None = None,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3 minimum)")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.part_size = part_size
        self.region = region or DEFAULT_REGION
        self.checksum_algorithm = checksum_algorithm
        session = boto3.session.Session()

        def client(endpoint: str | None) -> S3Client:
            config = Config(
                region_name=self.region,
                # Presigned URLs too: boto3 still signs them with SigV2 (AWSAccessKeyId=)
                # by default, which AWS regions opened since 2014 and many stores refuse.
                signature_version="s3v4",
                retries={"mode": "standard", "max_attempts": 3},
                max_pool_connections=MAX_CONNECTIONS,
                connect_timeout=10,
                read_timeout=60,
                s3={"addressing_style": addressing_style or ("path" if endpoint else "auto")},
                # By default only the checksums S3 requires, and those as Content-MD5
                # (core/storage/s3_checksums.py): several S3-compatible stores refuse the
                # flexible (CRC32) checksums newer botocore sends by default. With an
                # algorithm the uploads name it themselves (botocore computes a checksum
                # whenever ChecksumAlgorithm is given); "when_supported" states the intent
                # for any operation that does not.
                request_checksum_calculation=(
                    "when_supported" if checksum_algorithm else "when_required"
                ),
                response_checksum_validation="when_required",
            )
            made: S3Client = session.client(
                "s3",
                endpoint_url=endpoint,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                config=config,
            )
            if checksum_algorithm is None:
                use_content_md5(made)
            return made

        self._client = client(endpoint_url)
        self._presigner = client(public_endpoint_url) if public_endpoint_url else self._client
        self._executor = ThreadPoolExecutor(MAX_CONNECTIONS, thread_name_prefix="s3-storage")

    async def _call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, functools.partial(fn, *args, **kwargs)
            )
        except (BotoCoreError, ClientError) as exc:
            raise translate_error(exc, self.checksum_algorithm) from exc

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject:
        object_key = self._key(key)
        blocks = Blocks(self.part_size, PARTS_IN_FLIGHT + 1)
        upload: MultipartUpload | None = None
        try:
            async with aclosing(blocks.split(chunks)) as parts:
                async for block in parts:
                    # Shorter than a part: the whole object goes in one request.
                    if upload is None and block.last and len(block.view) < self.part_size:
                        try:
                            await self._put_object(object_key, block.body(), content_type)
                        finally:
                            await blocks.release(block)
                        break
                    if upload is None:
                        upload = await MultipartUpload.start(
                            self._client,
                            self._call,
                            self.bucket,
                            object_key,
                            content_type,
                            self.checksum_algorithm,
                        )
                    try:
                        upload.add_part(block.body(), functools.partial(blocks.release, block))
                    except BaseException:
                        await blocks.release(block)
                        raise
            if upload is not None:
                await upload.complete()
            sha256 = await blocks.sha256()
        except BaseException:
            if upload is not None:
                await asyncio.shield(upload.abort())
            await asyncio.shield(blocks.settle())
            raise
        return StoredObject(key, blocks.size, sha256, content_type)

    async def _put_object(self, object_key: str, body: bytes, content_type: str) -> None:
        request: PutObjectRequestTypeDef = {
            "Bucket": self.bucket,
            "Key": object_key,
            "Body": body,
            "ContentType": content_type,
        }
        if self.checksum_algorithm is not None:
            request["ChecksumAlgorithm"] = self.checksum_algorithm
        await self._call(self._client.put_object, **request)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        return await self.put_stream(key, iter_chunks(data, self.part_size), content_type)

    async def open_stream(
        self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        response = await self._call(self._client.get_object, Bucket=self.bucket, Key=self._key(key))
        return self._read_body(response["Body"], chunk_size)

    async def _read_body(self, body: StreamingBody, chunk_size: int) -> AsyncGenerator[bytes, None]:
        try:
            while chunk := await self._call(body.read, chunk_size):
                yield chunk
        finally:
            body.close()

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        object_key = self._key(key)
        check_range(start, length)
        if length == 0:
            return b""
        return await self._call(self._read_range_sync, object_key, start, length)

    def _read_range_sync(self, object_key: str, start: int, length: int) -> bytes:
        try:
            response = self._client.get_object(
                Bucket=self.bucket, Key=object_key, Range=f"bytes={start}-{start + length - 1}"
            )
        except ClientError as exc:
            if error_code(exc) == "InvalidRange":  # 416: the range starts at or past the end
                return b""
            raise
        body = response["Body"]
        try:
            # A store that ignored Range would send the whole object: refuse to read it.
            if response["ContentLength"] > length:
                raise StorageError(f"S3 GetObject ignored Range for {object_key!r}")
            return body.read()
        finally:
            body.close()

    async def stat(self, key: str) -> int | None:
        try:
            response = await self._call(
                self._client.head_object, Bucket=self.bucket, Key=self._key(key)
            )
        except ObjectNotFound:
            return None
        return response["ContentLength"]

    async def presigned_url(self, key: str, expires_in: int) -> str | None:
        return await self._call(
            self._presigner.generate_presigned_url,
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=expires_in,
        )

    async def delete(self, key: str) -> None:
        await self._call(self._client.delete_object, Bucket=self.bucket, Key=self._key(key))

    async def delete_prefix(self, prefix: str) -> int:
        return await self._call(self._delete_prefix_sync, self.prefix + check_prefix(prefix))

    def _delete_prefix_sync(self, prefix: str) -> int:
        deleted = 0
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [item["Key"] for item in page.get("Contents", [])]
            if not keys:
                continue
            response = self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
            if errors := response.get("Errors"):
                raise StorageError(f"S3 DeleteObjects under {prefix!r} failed: {errors[:3]}")
            deleted += len(keys)
        return deleted

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist: for tests and dev servers (moto, MinIO);
        the service itself never calls it (an operator provisions the bucket)."""
        await self._call(self._ensure_bucket_sync)

    def _ensure_bucket_sync(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if http_status(exc) != 404:
                raise
        try:
            if self.region == DEFAULT_REGION:
                self._client.create_bucket(Bucket=self.bucket)
            else:
                location: BucketLocationConstraintType = self.region  # type: ignore[assignment]
                self._client.create_bucket(
                    Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": location}
                )
        except ClientError as exc:
            # Another replica won the race.
            if error_code(exc) != "BucketAlreadyOwnedByYou":
                raise

    async def check(self) -> None:
        """Readiness: ``HeadBucket`` only, never a create (``s3:ListBucket`` is the one
        permission it needs). Raises StorageError naming the bucket when it does not exist
        (404) or the credentials may not read it (403); the store's other errors pass."""
        await self._call(self._check_sync)

    def _check_sync(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            status = http_status(exc)
            if status == 404:
                raise StorageError(
                    f"bucket {self.bucket!r} does not exist: create it (the service never does)"
                ) from exc
            if status == 403:
                raise StorageError(
                    f"access to bucket {self.bucket!r} denied: the credentials need"
                    " s3:ListBucket on it (README, operations: S3 permissions)"
                ) from exc
            raise

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        self._client.close()
        if self._presigner is not self._client:
            self._presigner.close()
