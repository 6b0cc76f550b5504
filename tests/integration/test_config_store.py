"""The runtime config when its row is missing (a restore, a wiped table): the process reads
what it seeded from its environment, not the built-in defaults, and the next write brings
the row back instead of updating nothing."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.bootstrap import prepare
from schemas.config import RuntimeConfigPatch
from schemas.settings import Settings


async def test_a_missing_row_reads_as_the_environment_and_a_write_restores_it(
    engine: AsyncEngine, settings: Settings
) -> None:
    mine = settings.model_copy(
        update={"upstream_kind": "gateway", "upstream_base_url": "https://gw.example/api"}
    )
    store = await prepare(mine, engine)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM runtime_config"))

    read = await store.get()
    assert (read.upstream_kind, read.upstream_base_url) == ("gateway", "https://gw.example/api")

    await store.update(RuntimeConfigPatch(max_concurrent_tasks_per_user=7))
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT count(*) FROM runtime_config"))).scalar_one()
    assert rows == 1
    fresh = await prepare(settings, engine)  # another process: reads the restored row
    again = await fresh.get()
    assert again.max_concurrent_tasks_per_user == 7
    assert again.upstream_base_url == "https://gw.example/api"
