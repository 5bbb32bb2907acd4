"""SessionDep: one transaction per request, committed before the response is sent, rolled back on error."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from apps.api.deps import SessionDep
from core.config import Settings, to_libpq_url
from core.errors import Conflict
from tests.api.conftest import ClientFactory


@pytest.fixture
async def scratch_table(database_url: str) -> AsyncIterator[str]:
    """A throw-away table (dropped afterwards so the migrated schema stays as Alembic left it)."""
    name = f"api_dep_probe_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        await conn.execute(
            f"CREATE TABLE {name} (id int, CONSTRAINT uq_{name} UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)"
        )
        yield name
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
        await conn.close()


async def _ids(database_url: str, table: str) -> list[int]:
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        return [row["id"] for row in await conn.fetch(f"SELECT id FROM {table} ORDER BY id")]
    finally:
        await conn.close()


def _routes(table: str):  # type: ignore[no-untyped-def]
    def customize(app: FastAPI) -> None:
        @app.post("/_test/rows/{row_id}")
        async def insert(row_id: int, session: SessionDep) -> dict[str, int]:
            await session.execute(text(f"INSERT INTO {table} (id) VALUES (:id)"), {"id": row_id})
            return {"id": row_id}

        @app.post("/_test/rows/{row_id}/then-fail")
        async def insert_then_fail(row_id: int, session: SessionDep) -> dict[str, int]:
            await session.execute(text(f"INSERT INTO {table} (id) VALUES (:id)"), {"id": row_id})
            raise Conflict("changed my mind")

        @app.post("/_test/rows/{row_id}/twice")
        async def insert_twice(row_id: int, session: SessionDep) -> dict[str, int]:
            for _ in range(2):  # the deferred unique constraint fails only at COMMIT
                await session.execute(text(f"INSERT INTO {table} (id) VALUES (:id)"), {"id": row_id})
            return {"id": row_id}

    return customize


async def test_request_transaction_is_committed(
    api: ClientFactory, settings: Settings, database_url: str, scratch_table: str
) -> None:
    async with api(settings, customize=_routes(scratch_table)) as client:
        response = await client.post("/_test/rows/1")
        assert response.status_code == 200
        # Visible to another connection as soon as the response has arrived.
        assert await _ids(database_url, scratch_table) == [1]


async def test_request_transaction_rolled_back_on_app_error(
    api: ClientFactory, settings: Settings, database_url: str, scratch_table: str
) -> None:
    async with api(settings, customize=_routes(scratch_table)) as client:
        response = await client.post("/_test/rows/2/then-fail")
    assert response.status_code == 409
    assert await _ids(database_url, scratch_table) == []


async def test_failing_commit_is_an_error_response_not_a_200(
    api: ClientFactory, settings: Settings, database_url: str, scratch_table: str
) -> None:
    async with api(settings, customize=_routes(scratch_table)) as client:
        response = await client.post("/_test/rows/3/twice")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "uq_" not in response.text  # the database error stays in the server log
    assert await _ids(database_url, scratch_table) == []
