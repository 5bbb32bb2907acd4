"""TimescaleDB in tests: the server named by ``SM_TEST_TIMESCALE_URL`` (skip when unset), and detection."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from core.config import load_settings, to_libpq_url
from core.db import timescale

SKIP_REASON = "needs TimescaleDB: set SM_TEST_TIMESCALE_URL to a server with the timescaledb extension preloaded"


def timescale_url() -> str | None:
    return load_settings().test_timescale_url or None


def require_timescale_url() -> str:
    url = timescale_url()
    if url is None:
        pytest.skip(SKIP_REASON)
    return url


async def installed(database_url: str) -> bool:
    """Whether the database has the timescaledb extension (async)."""
    conn = await asyncpg.connect(to_libpq_url(database_url), timeout=10)
    try:
        return bool(await conn.fetchval(timescale.INSTALLED_SQL))
    finally:
        await conn.close()


def timescaledb_installed(database_url: str) -> bool:
    """Whether the database has the extension (the migrations install it where it is available)."""
    return asyncio.run(installed(database_url))


async def fetch(database_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    """Rows of one statement, on a connection of its own (autocommit: ``CALL refresh_…`` works)."""
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()
