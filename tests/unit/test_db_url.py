"""``DATABASE_URL``'s ``pgbouncer`` flag (core/db.py): read and removed, never passed on."""

from __future__ import annotations

import pytest

from core.db import make_engine


async def test_the_pgbouncer_flag_is_removed_and_turns_statement_caches_off() -> None:
    engine = make_engine("postgresql+asyncpg://u@127.0.0.1:1/db?pgbouncer=true")
    try:
        assert "pgbouncer" not in engine.url.query
        assert engine.url.query["prepared_statement_cache_size"] == "0"
    finally:
        await engine.dispose()
    plain = make_engine("postgresql+asyncpg://u@127.0.0.1:1/db?pgbouncer=false")
    try:
        assert dict(plain.url.query) == {}
    finally:
        await plain.dispose()


def test_another_value_is_refused() -> None:
    with pytest.raises(ValueError, match="pgbouncer='yes'"):
        make_engine("postgresql+asyncpg://u@127.0.0.1:1/db?pgbouncer=yes")


async def test_libpqs_sslmode_becomes_asyncpgs_ssl() -> None:
    engine = make_engine("postgresql+asyncpg://u@127.0.0.1:1/db?sslmode=require")
    try:
        assert dict(engine.url.query) == {"ssl": "require"}
    finally:
        await engine.dispose()
