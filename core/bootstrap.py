"""Start-up steps both processes share: seed the runtime config, register the admin key."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from core import apikeys
from core.config_store import ConfigStore
from core.secrets import SecretBox
from core.storage import Storage, open_storage
from schemas.settings import Settings

log = structlog.get_logger(__name__)


async def prepare(settings: Settings, engine: AsyncEngine) -> ConfigStore:
    store = ConfigStore(engine, SecretBox(*settings.secret_keys))
    await store.seed(settings)
    if settings.admin_key:
        async with engine.begin() as conn:
            revoked = await apikeys.register_bootstrap(conn, settings.admin_key)
            active = await apikeys.authenticate(conn, settings.admin_key) is not None
        if revoked:
            log.warning("bootstrap_admin_key_rotated", revoked=revoked)
        if not active:
            log.error("bootstrap_admin_key_revoked", hint="GOOGLE_VIDEO_ADMIN_KEY was revoked")
    return store


def storage_from(settings: Settings) -> Storage:
    return open_storage(
        settings.storage_url,
        endpoint_url=settings.s3_endpoint_url,
        public_endpoint_url=settings.s3_public_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
        addressing_style=settings.s3_addressing_style,
        checksum_algorithm=settings.s3_checksum_algorithm,
    )
