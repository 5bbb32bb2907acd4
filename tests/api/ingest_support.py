"""Helpers of the ingest tests: unique sensor ids, reading payloads, posting a batch, row counts straight from
PostgreSQL. The ``client`` and ``prefix`` fixtures are in ``conftest.py``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson

from core.config import Settings, to_libpq_url

INGEST = "/api/v1/data/ingest"


def headers(settings: Settings, **extra: str) -> dict[str, str]:
    return {"X-API-Key": settings.api_key.get_secret_value(), "Content-Type": "application/json", **extra}


def sensor_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def post(client: httpx.AsyncClient, settings: Settings, body: object, **params: str) -> httpx.Response:
    """POST ``body`` to the ingest endpoint with the API key; ``params`` go to the query string."""
    return await client.post(INGEST, content=orjson.dumps(body), headers=headers(settings), params=params)


#: Fixed reference time of a test run, so that the same ``minutes_ago`` is the same instant in every call.
BASE = datetime.now(UTC).replace(second=0, microsecond=0)


def ts(minutes_ago: float = 10.0, *, base: datetime | None = None) -> str:
    base = base or BASE
    return (base - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def reading(sensor_id: str, minutes_ago: float = 10.0, value: Any = 1.5, **extra: Any) -> dict[str, Any]:
    return {"sensor_id": sensor_id, "value": value, "timestamp": ts(minutes_ago), **extra}


async def fetchval(database_url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def execute(database_url: str, sql: str, *args: Any) -> None:
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def count_readings(database_url: str, prefix: str) -> int:
    return int(
        await fetchval(
            database_url, "SELECT count(*) FROM sensor_readings WHERE sensor_id LIKE $1", prefix + "%"
        )
    )


async def count_sensors(database_url: str, prefix: str) -> int:
    return int(
        await fetchval(database_url, "SELECT count(*) FROM sensors WHERE sensor_id LIKE $1", prefix + "%")
    )


async def outbox_rows(database_url: str, ingest_event_id: str) -> int:
    return int(
        await fetchval(
            database_url,
            "SELECT count(*) FROM outbox WHERE event_type = 'ReadingsIngested' "
            "AND payload->>'ingest_event_id' = $1",
            ingest_event_id,
        )
    )


async def outbox_rows_for_sensors(database_url: str, sensor_ids: Sequence[str]) -> int:
    return int(
        await fetchval(
            database_url,
            "SELECT count(*) FROM outbox WHERE event_type = 'ReadingsIngested' "
            "AND payload->'sensor_ids' ?| $1::text[]",
            list(sensor_ids),
        )
    )


async def register_sensor(database_url: str, sensor_id: str, sensor_type: str = "temperature") -> None:
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        await conn.execute(
            "INSERT INTO sensors (sensor_id, type) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            sensor_id,
            sensor_type,
        )
    finally:
        await conn.close()
