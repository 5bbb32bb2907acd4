"""Reads the ML serving and drift checks need: sensor types, recent history, windows of values (SQL only here)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.fleet.models import Sensor
from core.readings.models import SensorReading

_BUCKETS_SQL = text(
    """
    SELECT date_bin(CAST(:width AS interval), r.timestamp, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
           avg(r.value) AS value
    FROM sensor_readings r
    WHERE r.sensor_id = :sensor_id
      AND r.timestamp > (SELECT max(timestamp) FROM sensor_readings WHERE sensor_id = :sensor_id)
                        - CAST(:span AS interval)
    GROUP BY bucket
    ORDER BY bucket
    """
)


class MlReadingsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def sensor_type(self, sensor_id: str) -> str | None:
        """The sensor's type, or None when the sensor does not exist."""
        return await self.session.scalar(select(Sensor.type).where(Sensor.sensor_id == sensor_id))

    async def sensors(
        self, sensor_ids: Sequence[str] | None = None, sensor_type: str | None = None
    ) -> list[tuple[str, str]]:
        """``(sensor_id, type)`` of the matching sensors (all when no filter), by id."""
        query = select(Sensor.sensor_id, Sensor.type).order_by(Sensor.sensor_id)
        if sensor_ids is not None:
            query = query.where(Sensor.sensor_id.in_(list(sensor_ids)))
        if sensor_type is not None:
            query = query.where(Sensor.type == sensor_type)
        return [(row[0], row[1]) for row in await self.session.execute(query)]

    async def recent(
        self, sensor_id: str, limit: int, *, before: datetime | None = None
    ) -> list[tuple[datetime, float]]:
        """The last ``limit`` readings of the sensor (strictly before ``before`` if given), oldest first."""
        query = select(SensorReading.timestamp, SensorReading.value).where(
            SensorReading.sensor_id == sensor_id
        )
        if before is not None:
            query = query.where(SensorReading.timestamp < before)
        query = query.order_by(SensorReading.timestamp.desc()).limit(limit)
        rows = [(row[0], float(row[1])) for row in await self.session.execute(query)]
        rows.reverse()
        return rows

    async def recent_buckets(
        self, sensor_id: str, width: timedelta, buckets: int
    ) -> list[tuple[datetime, float]]:
        """Mean value per ``width`` bucket (aligned on 2000-01-01 UTC) over the ``buckets`` widths that end at the
        sensor's latest reading, oldest first; empty buckets are absent."""
        rows = await self.session.execute(
            _BUCKETS_SQL, {"sensor_id": sensor_id, "width": width, "span": width * buckets}
        )
        return [(row.bucket, float(row.value)) for row in rows]

    async def latest_timestamp(self, sensor_id: str) -> datetime | None:
        return await self.session.scalar(
            select(func.max(SensorReading.timestamp)).where(SensorReading.sensor_id == sensor_id)
        )

    async def values(self, sensor_id: str, start: datetime, end: datetime) -> list[float]:
        """Values of the sensor's readings in ``(start, end]``, in time order."""
        query = (
            select(SensorReading.value)
            .where(
                SensorReading.sensor_id == sensor_id,
                SensorReading.timestamp > start,
                SensorReading.timestamp <= end,
            )
            .order_by(SensorReading.timestamp)
        )
        return [float(v) for v in await self.session.scalars(query)]


__all__ = ["MlReadingsRepository"]
