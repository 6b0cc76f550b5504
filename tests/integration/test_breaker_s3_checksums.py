"""Breaker probes of S3_CHECKSUM_ALGORITHM (c3aae2d..0d571ab) against moto: the edges of
the stream (empty, exactly one part, exactly two), presigned URLs through the strict
proxy, deletion through the strict proxy, and the path the setting is for in production —
https, where botocore sends the checksum as an ``aws-chunked`` trailer and signs
``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` (a TLS relay in front of moto, the CA trusted
through ``AWS_CA_BUNDLE``)."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from cli.supervise import HOST
from core.storage import S3Storage, StorageError, TransientStorageError
from tests.s3proxy import RefusingProxy
from tests.services import s3_client, s3_storage_from_settings
from tests.tls import make_certificates

MiB = 1024 * 1024
PART = 8 * MiB


def _storage(endpoint: str, algorithm: str | None, public: str | None = None) -> S3Storage:
    return s3_storage_from_settings(endpoint, algorithm, bucket="breaker", public=public)


async def _chunks(data: bytes, size: int = MiB) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _data(size: int) -> bytes:
    return (hashlib.sha256(str(size).encode()).digest() * (size // 32 + 1))[:size]


async def _roundtrip(storage: S3Storage, key: str, data: bytes) -> bytes:
    stored = await storage.put_stream(key, _chunks(data), "video/mp4")
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    return b"".join([c async for c in await storage.open_stream(key)])


@pytest.mark.parametrize("size", [0, 1, PART - 1, PART, 2 * PART])
@pytest.mark.parametrize("algorithm", ["CRC32", "SHA1", "SHA256"])
async def test_stream_edges_store_and_read_back_exactly(
    checking: RefusingProxy, size: int, algorithm: str
) -> None:
    storage = _storage(checking.url, algorithm)
    before = len(checking.seen)
    try:
        await storage.ensure_bucket()
        data = _data(size)
        assert await _roundtrip(storage, "videos/e/video.mp4", data) == data
        assert await storage.stat("videos/e/video.mp4") == size
    finally:
        await storage.close()
    assert [s for s in checking.seen[before:] if s.refused] == []


@pytest.mark.parametrize("algorithm", ["CRC32", None])
async def test_a_presigned_url_passes_the_strict_store(
    strict: RefusingProxy, checking: RefusingProxy, s3_endpoint: str, algorithm: str | None
) -> None:
    # Uploaded through the store that takes checksums, presigned for the strict one.
    writer = _storage(checking.url, algorithm)
    await writer.ensure_bucket()
    await writer.put_bytes("videos/p/video.mp4", b"presigned body", "video/mp4")
    reader = _storage(s3_endpoint, algorithm, public=strict.url)
    reader.bucket = writer.bucket
    try:
        url = await reader.presigned_url("videos/p/video.mp4", 60)
        assert url is not None
        async with httpx.AsyncClient() as http:
            got = await http.get(url)
        assert (got.status_code, got.content) == (200, b"presigned body"), got.text
        assert "x-amz-checksum" not in url.lower()
    finally:
        await writer.close()
        await reader.close()


async def test_a_strict_store_refuses_a_crc32_deletion_naming_the_setting_and_keeps_objects(
    strict: RefusingProxy, checking: RefusingProxy, s3_endpoint: str
) -> None:
    writer = _storage(checking.url, "CRC32")
    await writer.ensure_bucket()
    await writer.put_bytes("videos/d/video.mp4", b"x", "video/mp4")
    deleter = _storage(strict.url, "CRC32")
    deleter.bucket = writer.bucket
    try:
        with pytest.raises(StorageError, match="S3_CHECKSUM_ALGORITHM is CRC32") as refused:
            await deleter.delete_prefix("videos/d/")
        assert not isinstance(refused.value, TransientStorageError)
        assert await writer.stat("videos/d/video.mp4") == 1
        assert await writer.delete_prefix("videos/d/") == 1  # a store that takes them
    finally:
        await writer.close()
        await deleter.close()


class _TlsRelay:
    """https://127.0.0.1:port relayed byte for byte to moto's plain http."""

    def __init__(self, upstream: str, context: ssl.SSLContext, cut_at: int | None = None) -> None:
        target = urlsplit(upstream)
        self._host, self._port = target.hostname or HOST, target.port or 80
        self._context = context
        self.server: asyncio.Server | None = None
        # Once this many request bytes have gone up (all connections together), the
        # connection carrying them is cut, once: a request dropped mid-body.
        self._cut_at = cut_at
        self._sent = 0
        self.cut = False

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool = False
    ) -> None:
        try:
            while data := await reader.read(65536):
                if up and self._cut_at is not None and not self.cut:
                    self._sent += len(data)
                    if self._sent >= self._cut_at:
                        self.cut = True
                        break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        down = asyncio.ensure_future(self._pipe(up_reader, writer))
        await self._pipe(reader, up_writer, up=True)
        if self.cut:
            writer.transport.abort()
            up_writer.transport.abort()
        await down

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, HOST, 0, ssl=self._context)
        return f"https://{HOST}:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


@pytest.mark.parametrize("size", [5, PART, 2 * PART + 3])
@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256", None])
async def test_over_https_the_trailer_checksum_stores_the_bytes_themselves(
    s3_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
    algorithm: str | None,
) -> None:
    certificates = make_certificates(tmp_path)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificates.ca_file))
    async with _TlsRelay(s3_endpoint, certificates.server_context()) as https:
        storage = _storage(https, algorithm)
        try:
            await storage.ensure_bucket()
            data = _data(size)
            read = await _roundtrip(storage, "videos/tls/video.mp4", data)
            assert len(read) == len(data) and read == data
            assert await storage.delete_prefix("videos/tls/") == 1
        finally:
            await storage.close()
    # What another client (plain http, straight to moto) reads is the same.
    listed = s3_client(s3_endpoint).list_objects_v2(Bucket=storage.bucket)
    assert listed["KeyCount"] == 0


@pytest.mark.parametrize("algorithm", ["CRC32", None])
async def test_over_https_a_part_cut_mid_body_is_sent_again_whole(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, algorithm: str | None
) -> None:
    """botocore retries the part on a new connection: with the trailer checksum it must
    rewind its aws-chunked body (checksum included), and the object must be the bytes."""
    certificates = make_certificates(tmp_path)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificates.ca_file))
    relay = _TlsRelay(s3_endpoint, certificates.server_context(), cut_at=PART + PART // 2)
    async with relay as https:
        storage = _storage(https, algorithm)
        try:
            await storage.ensure_bucket()
            data = _data(3 * PART + 7)
            assert await _roundtrip(storage, "videos/cut/video.mp4", data) == data
        finally:
            await storage.close()
    assert relay.cut
