"""Helpers of the anomaly agent tests: sensors and readings written straight to PostgreSQL, the matching
``ReadingsIngested`` event, anomaly and outbox rows read back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.anomaly.agent import AnomalyAgent
from core.config import Settings
from core.events.types import ReadingsIngested
from core.ml.registry.mlflow_registry import MlflowRegistry

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def agent_for(settings: Settings, session_factory: async_sessionmaker[AsyncSession]) -> AnomalyAgent:
    """The anomaly agent the composition root builds: on the MLflow registry of ``settings``."""
    return AnomalyAgent(settings, session_factory, registry=MlflowRegistry(settings.mlflow_tracking_uri))


def sensor_id() -> str:
    return f"an-{uuid.uuid4().hex[:10]}"


async def add_sensor(db: asyncpg.Connection, sensor: str, sensor_type: str = "temperature") -> None:
    await db.execute(
        "INSERT INTO sensors (sensor_id, type) VALUES ($1, $2) ON CONFLICT DO NOTHING", sensor, sensor_type
    )


async def add_readings(
    db: asyncpg.Connection, sensor: str, values: Sequence[float], *, start: int = 0
) -> ReadingsIngested:
    """Store ``values`` one minute apart from ``T0 + start`` minutes; the event an ingest would emit."""
    stamps = [T0 + timedelta(minutes=start + i) for i in range(len(values))]
    await db.executemany(
        "INSERT INTO sensor_readings (timestamp, sensor_id, value) VALUES ($1, $2, $3)",
        [(t, sensor, float(v)) for t, v in zip(stamps, values, strict=True)],
    )
    return ReadingsIngested(
        sensor_ids=[sensor],
        count=len(values),
        first_timestamp=stamps[0],
        last_timestamp=stamps[-1],
        ingest_event_id=uuid.uuid4(),
    )


def normal_values(n: int, *, seed: int = 0, mean: float = 20.0, sd: float = 0.2) -> list[float]:
    import numpy as np

    return [float(v) for v in np.random.default_rng(seed).normal(mean, sd, size=n)]


async def anomalies(db: asyncpg.Connection, sensor: str) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM anomalies WHERE sensor_id = $1 ORDER BY timestamp", sensor)


async def anomaly_events(db: asyncpg.Connection, sensor: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT * FROM outbox WHERE event_type = 'AnomalyDetected' AND payload->>'sensor_id' = $1 ORDER BY id",
        sensor,
    )
