"""Uploaded images: checked, stored, read back for a create, deleted, and removed at expiry.

An upload belongs to the client that made it and lives until its ``expires_at``
(``UPLOAD_TTL_SECONDS`` after it was made), used or not. A create that names it copies
its bytes into the video's own ``inputs/`` objects, so no task ever refers to an upload's
object and the housekeeping job can delete it at expiry without looking at tasks.

The row is written before the object and removed after it: an object is never left
without a row that will, at its expiry, have it deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import autocommit
from core.ids import new_id
from core.images import MIME_EXT, ImageFacts, inspect_image
from core.repo import uploads
from core.repo.uploads import Upload
from core.storage import ObjectNotFound, Storage, StorageError
from core.storage.keys import upload_key
from schemas.clock import utcnow

log = structlog.get_logger(__name__)

# At most this many images are decoded at once per process (each may take ~160 MB while
# it decodes); more wait their turn here instead of taking the default executor's threads
# (which the API also uses to parse large JSON bodies off the event loop).
DECODERS = 2
_decoders = ThreadPoolExecutor(max_workers=DECODERS, thread_name_prefix="image-decode")


async def inspect(data: bytes) -> tuple[ImageFacts, str]:
    """``(facts, sha256 hex)`` of an uploaded file, decoded off the event loop; raises
    ``core.images.ImageError`` for anything but one complete image within bounds."""

    def work() -> tuple[ImageFacts, str]:
        facts = inspect_image(data)
        return facts, hashlib.sha256(data).hexdigest()

    return await asyncio.get_running_loop().run_in_executor(_decoders, work)


async def store(
    engine: AsyncEngine,
    storage: Storage,
    *,
    client_id: str,
    data: bytes,
    facts: ImageFacts,
    sha256: str,
    ttl_seconds: int,
) -> Upload:
    """Record and store a checked image for ``client_id``; it expires ``ttl_seconds``
    from now. A storage failure removes the row again and propagates."""
    upload_id = new_id("upload")
    now = utcnow()
    upload = Upload(
        id=upload_id,
        client_id=client_id,
        key=upload_key(upload_id, MIME_EXT[facts.mime]),
        size=len(data),
        mime_type=facts.mime,
        width=facts.width,
        height=facts.height,
        sha256=sha256,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    async with autocommit(engine) as conn:
        await uploads.insert_upload(conn, upload)
    try:
        await storage.put_bytes(upload.key, data, facts.mime)
    except BaseException:
        async with autocommit(engine) as conn:
            await uploads.remove(conn, upload_id)
        raise
    return upload


async def find(engine: AsyncEngine, upload_id: str, *, client_id: str) -> Upload | None:
    """The client's upload while it has not expired; None otherwise (anyone else's too)."""
    async with engine.connect() as conn:
        return await uploads.visible(conn, upload_id, client_id=client_id, now=utcnow())


async def read(
    engine: AsyncEngine, storage: Storage, upload_id: str, *, client_id: str
) -> tuple[str, bytes] | None:
    """``(mime, bytes)`` of the client's live upload, for a create to copy; None when it
    is not the client's, has expired, or its object is gone (deleted meanwhile)."""
    upload = await find(engine, upload_id, client_id=client_id)
    if upload is None:
        return None
    try:
        async with aclosing(await storage.open_stream(upload.key)) as stream:
            data = b"".join([chunk async for chunk in stream])
    except ObjectNotFound:
        return None
    return upload.mime_type, data


async def discard(engine: AsyncEngine, storage: Storage, upload_id: str, *, client_id: str) -> bool:
    """Delete the client's live upload (``DELETE /v1/uploads/{id}``): expired at once, so
    no create can use it, then its object and row. Whether there was one. An object the
    storage cannot delete now is left to the housekeeping job (its row stays, expired)."""
    now = utcnow()
    async with autocommit(engine) as conn:
        key = await uploads.expire_now(conn, upload_id, client_id=client_id, now=now)
    if key is None:
        return False
    try:
        await storage.delete(key)
    except StorageError as exc:
        log.warning("upload_object_not_deleted", upload_id=upload_id, error=str(exc))
        return True
    async with autocommit(engine) as conn:
        await uploads.remove(conn, upload_id)
    return True


async def purge_expired(
    engine: AsyncEngine, storage: Storage, *, now: datetime | None = None, batch: int = 500
) -> int:
    """Delete every upload expired by ``now``: its object, then its row. How many went.

    An object the storage cannot delete keeps its row for the next run, and ends this
    one (the storage is likely down; the next run retries)."""
    now = now or utcnow()
    purged = 0
    while True:
        async with engine.connect() as conn:
            due = await uploads.expired(conn, now=now, limit=batch)
        for item in due:
            try:
                await storage.delete(item.key)
            except StorageError as exc:
                log.warning("upload_object_not_deleted", upload_id=item.id, error=str(exc))
                return purged
            async with autocommit(engine) as conn:
                purged += await uploads.remove(conn, item.id)
        if len(due) < batch:
            return purged
