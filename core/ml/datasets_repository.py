"""Training data for core/ml: readings by sensors and time range, joined with the sensor's type (SQL only here).

Labels of completed work orders are read through ``MaintenanceRepository.list_labels`` (not duplicated here).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.fleet.models import Sensor
from core.readings.models import SensorReading


class TrainingReading(NamedTuple):
    sensor_id: str
    sensor_type: str
    value: float
    unit: str | None
    timestamp: datetime
    quality: float | None


async def readings_for_training(
    session: AsyncSession,
    *,
    sensor_ids: Sequence[str] | None = None,
    sensor_types: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[TrainingReading]:
    """Readings with ``start <= timestamp < end`` of the given sensors and/or sensor types (None: all), with the
    sensor's type, ordered by sensor then time. ``limit`` caps the number of rows (None: no cap)."""
    stmt = (
        select(
            SensorReading.sensor_id,
            Sensor.type,
            SensorReading.value,
            SensorReading.unit,
            SensorReading.timestamp,
            SensorReading.quality,
        )
        .join(Sensor, Sensor.sensor_id == SensorReading.sensor_id)
        .order_by(SensorReading.sensor_id, SensorReading.timestamp)
    )
    if sensor_ids is not None:
        stmt = stmt.where(SensorReading.sensor_id.in_(list(sensor_ids)))
    if sensor_types is not None:
        stmt = stmt.where(Sensor.type.in_(list(sensor_types)))
    if start is not None:
        stmt = stmt.where(SensorReading.timestamp >= start)
    if end is not None:
        stmt = stmt.where(SensorReading.timestamp < end)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [TrainingReading(*row) for row in (await session.execute(stmt)).all()]


__all__ = ["TrainingReading", "readings_for_training"]
