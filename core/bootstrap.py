"""Start-up steps both processes share: seed the runtime config, register the admin key."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from core import apikeys
from core.config_store import ConfigStore
from core.secrets import SecretBox
from core.storage import Storage, open_storage
from schemas.settings import Settings
from schemas.status import Role

ADMIN_CLIENT = "admin"


async def prepare(settings: Settings, engine: AsyncEngine) -> ConfigStore:
    store = ConfigStore(engine, SecretBox(settings.secret_key))
    await store.seed(settings)
    if settings.admin_key:
        async with engine.begin() as conn:
            await apikeys.ensure_key(
                conn, settings.admin_key, client_id=ADMIN_CLIENT, name="bootstrap", role=Role.ADMIN
            )
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
    )
