"""Helpers of the maintenance tests: an asset with sensors and alerts of their own (unique names per test)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from core.config import Settings, to_libpq_url
from core.events.types import AlertRaised


@asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(to_libpq_url(settings.database_url))
    try:
        yield conn
    finally:
        await conn.close()


@dataclass(frozen=True)
class Plant:
    """One asset with sensors (``sensor_ids``), unique to the test that made it."""

    asset_id: int
    sensor_ids: list[str]


async def make_plant(conn: asyncpg.Connection, sensors: int = 2) -> Plant:
    tag = uuid.uuid4().hex[:10]
    asset_id = await conn.fetchval(
        "INSERT INTO assets (name, site, kind) VALUES ($1, 'test-site', 'pump') RETURNING id", f"asset-{tag}"
    )
    sensor_ids = [f"s-{tag}-{i}" for i in range(sensors)]
    for sensor_id in sensor_ids:
        await conn.execute(
            "INSERT INTO sensors (sensor_id, asset_id, type, unit) VALUES ($1, $2, 'vibration', 'mm/s')",
            sensor_id,
            asset_id,
        )
    return Plant(asset_id=asset_id, sensor_ids=sensor_ids)


async def make_alert(
    conn: asyncpg.Connection,
    sensor_id: str,
    *,
    rule: str = "vibration_max",
    severity: str = "high",
    opened_at: datetime | None = None,
) -> AlertRaised:
    """Insert an open alert and return the ``AlertRaised`` event the alerting agent would emit for it."""
    at = opened_at or datetime.now(UTC)
    alert_id = await conn.fetchval(
        "INSERT INTO alerts (sensor_id, rule, severity, status, opened_at, event_opened_at) "
        "VALUES ($1, $2, $3, 'open', $4, $4) RETURNING id",
        sensor_id,
        rule,
        severity,
        at,
    )
    return AlertRaised(alert_id=alert_id, sensor_id=sensor_id, rule=rule, severity=severity)  # type: ignore[arg-type]


async def add_anomaly(conn: asyncpg.Connection, sensor_id: str, at: datetime, score: float = 5.0) -> None:
    await conn.execute(
        "INSERT INTO anomalies (sensor_id, timestamp, value, score, method) VALUES ($1, $2, 1.0, $3, 'test')",
        sensor_id,
        at,
        score,
    )


async def tasks_for_alert(conn: asyncpg.Connection, alert_id: int) -> list[dict[str, Any]]:
    return [
        dict(r) for r in await conn.fetch("SELECT * FROM maintenance_tasks WHERE alert_id = $1", alert_id)
    ]


async def tasks_for_sensor(conn: asyncpg.Connection, sensor_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM maintenance_tasks WHERE sensor_id = $1 ORDER BY id", sensor_id)
    return [dict(r) for r in rows]


async def outbox_rows(conn: asyncpg.Connection, event_type: str, task_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM outbox WHERE event_type = $1 AND (payload->>'task_id')::bigint = $2",
        event_type,
        task_id,
    )
    return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]


def hours_between(a: datetime, b: datetime) -> float:
    return (a - b) / timedelta(hours=1)
