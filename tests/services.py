"""The local servers and process helpers the tests use.

They live in ``cli.localservices`` (PostgreSQL, Redis, moto S3) and ``cli.supervise``
(child processes, free ports, waiting with a deadline), where the benchmarks can reach
them without importing ``tests``; test modules import them from here.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import boto3

from cli.localservices import (
    PG_BIN,
    PG_DATABASE,
    MotoServer,
    PostgresServer,
    RedisServer,
    ServerProcess,
)
from cli.supervise import HOST, free_port, port_open, wait_for_port, wait_until
from core.bootstrap import storage_from
from core.storage import S3Storage
from schemas.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "HOST",
    "PG_BIN",
    "PG_DATABASE",
    "MotoServer",
    "PostgresServer",
    "RedisServer",
    "ServerProcess",
    "free_port",
    "port_open",
    "s3_client",
    "wait_for_port",
    "wait_until",
]


def s3_storage_from_settings(
    endpoint: str, algorithm: str | None, *, bucket: str, public: str | None = None
) -> S3Storage:
    """The product's S3Storage as ``storage_from`` builds it from settings, on the test S3
    server at ``endpoint`` (a fresh ``s3://<bucket>-<random>/p``), with
    ``S3_CHECKSUM_ALGORITHM=algorithm`` and ``S3_PUBLIC_ENDPOINT_URL=public``."""
    storage = storage_from(
        Settings(
            storage_url=f"s3://{bucket}-{uuid.uuid4().hex[:16]}/p",
            s3_endpoint_url=endpoint,
            s3_public_endpoint_url=public,
            s3_access_key_id="test",
            s3_secret_access_key="test",
            s3_checksum_algorithm=algorithm,
        )
    )
    assert isinstance(storage, S3Storage)
    return storage


def s3_client(endpoint: str) -> S3Client:
    """A plain boto3 client of the test S3 server at ``endpoint`` (moto's throwaway
    credentials), to look at what the product stored without going through it."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
