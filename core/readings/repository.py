"""Sensor readings: set-based bulk insert, counts and a streaming export query (SQL only here)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from itertools import islice
from typing import NamedTuple

from sqlalchemy import TextClause, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.fleet.models import Sensor
from core.readings.models import SensorReading

#: Rows per INSERT statement (one round trip each; see FIELD_NOTES: unnest batches of ~5k).
DEFAULT_CHUNK_SIZE = 5_000

#: The rows of an insert, from five parallel arrays (one bind parameter each, whatever the row count).
UNNEST_SOURCE = """
    SELECT * FROM unnest(
        CAST(:timestamps AS timestamptz[]),
        CAST(:sensor_ids AS text[]),
        CAST(:values AS double precision[]),
        CAST(:units AS text[]),
        CAST(:qualities AS double precision[])
    )
"""


def insert_readings_sql(source: str, *, keys: bool) -> TextClause:
    """``INSERT … {source} ON CONFLICT DO NOTHING`` answering either the inserted keys or one summary row
    (count, first and last timestamp, sensors)."""
    summary = (
        "SELECT sensor_id, timestamp FROM inserted"
        if keys
        else "SELECT count(*), min(timestamp), max(timestamp), array_agg(DISTINCT sensor_id) FROM inserted"
    )
    return text(
        f"""
        WITH inserted AS (
            INSERT INTO sensor_readings (timestamp, sensor_id, value, unit, quality)
            {source}
            ON CONFLICT (timestamp, sensor_id) DO NOTHING
            RETURNING timestamp, sensor_id
        )
        {summary}
        """
    )


_INSERT_SQL = insert_readings_sql(UNNEST_SOURCE, keys=False)


_CAPPED_COUNT_SQL = text(
    """
    SELECT s.sensor_id,
           (SELECT count(*) FROM (SELECT 1 FROM sensor_readings r WHERE r.sensor_id = s.sensor_id LIMIT :cap) x)
    FROM unnest(CAST(:ids AS text[])) AS s(sensor_id)
    """
)

_LATEST_SQL = text(
    """
    SELECT s.sensor_id, (SELECT max(r.timestamp) FROM sensor_readings r WHERE r.sensor_id = s.sensor_id)
    FROM unnest(CAST(:ids AS text[])) AS s(sensor_id)
    """
)


class ReadingRow(NamedTuple):
    timestamp: datetime
    sensor_id: str
    value: float
    unit: str | None
    quality: float | None


class ReadingWithType(NamedTuple):
    """One row of the CSV export; ``unit`` falls back to the sensor's unit when the reading has none."""

    sensor_id: str
    sensor_type: str
    value: float
    unit: str | None
    timestamp: datetime
    quality: float | None


class ReadingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert_many(self, rows: Iterable[ReadingRow], *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
        """Insert readings in chunks with one ``INSERT … SELECT FROM unnest(…)`` each.

        Rows whose ``(timestamp, sensor_id)`` already exists are skipped (``ON CONFLICT DO NOTHING``), so
        re-sending is harmless. Returns the number of rows actually inserted. Sensors must exist (FK).
        """
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        inserted = 0
        iterator = iter(rows)
        while chunk := list(islice(iterator, chunk_size)):
            columns = list(zip(*chunk, strict=True))
            params = {
                "timestamps": list(columns[0]),
                "sensor_ids": list(columns[1]),
                "values": [float(v) for v in columns[2]],
                "units": list(columns[3]),
                "qualities": [None if q is None else float(q) for q in columns[4]],
            }
            inserted += (await self._session.execute(_INSERT_SQL, params)).one()[0]  # the summary row
        return inserted

    async def count_by_sensor(
        self, sensor_ids: Sequence[str] | None = None, *, at_most: int | None = None
    ) -> dict[str, int]:
        """``{sensor_id: number of readings}``; sensors without readings are absent.

        With ``at_most`` each count stops there (an index probe per sensor instead of a full count), which is
        enough to answer "does every sensor have at least n readings?" on a large table.
        """
        if at_most is None:
            stmt = select(SensorReading.sensor_id, func.count()).group_by(SensorReading.sensor_id)
            if sensor_ids is not None:
                stmt = stmt.where(SensorReading.sensor_id.in_(list(sensor_ids)))
            rows = await self._session.execute(stmt)
        else:
            if sensor_ids is None:
                raise ValueError("at_most needs explicit sensor_ids")
            rows = await self._session.execute(_CAPPED_COUNT_SQL, {"ids": list(sensor_ids), "cap": at_most})
        return {sensor_id: count for sensor_id, count in rows if count}

    async def latest_by_sensor(self, sensor_ids: Sequence[str]) -> dict[str, datetime]:
        """``{sensor_id: timestamp of its latest reading}`` (one index probe per sensor); absent when none."""
        rows = await self._session.execute(_LATEST_SQL, {"ids": list(sensor_ids)})
        return {sensor_id: latest for sensor_id, latest in rows if latest is not None}

    async def iter_readings_with_type(
        self, sensor_ids: Sequence[str] | None = None, *, batch_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncIterator[ReadingWithType]:
        """Stream readings joined with their sensor's type, sorted by sensor then time (server-side cursor).

        Must run inside a transaction (a unit of work).
        """
        stmt = (
            select(
                SensorReading.sensor_id,
                Sensor.type,
                SensorReading.value,
                func.coalesce(SensorReading.unit, Sensor.unit),
                SensorReading.timestamp,
                SensorReading.quality,
            )
            .join(Sensor, Sensor.sensor_id == SensorReading.sensor_id)
            .order_by(SensorReading.sensor_id, SensorReading.timestamp)
            .execution_options(yield_per=batch_size)
        )
        if sensor_ids is not None:
            stmt = stmt.where(SensorReading.sensor_id.in_(list(sensor_ids)))
        result = await self._session.stream(stmt)
        async for row in result:
            yield ReadingWithType(*row)
