"""Anomalies and the readings the anomaly agent scores (SQL only here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


class ReadingToScore(NamedTuple):
    sensor_id: str
    sensor_type: str
    timestamp: datetime
    value: float


class History(NamedTuple):
    """The last readings of a sensor before some instant, oldest first."""

    timestamps: list[datetime]
    values: list[float]

    @property
    def last_timestamp(self) -> datetime | None:
        return self.timestamps[-1] if self.timestamps else None


class NewAnomaly(NamedTuple):
    sensor_id: str
    timestamp: datetime
    value: float
    score: float
    method: str
    model_name: str | None = None
    model_version: str | None = None


class StoredAnomaly(NamedTuple):
    id: int
    sensor_id: str
    timestamp: datetime
    value: float
    score: float
    method: str
    model_name: str | None
    model_version: str | None


_HISTORY_SQL = text(
    """
    SELECT b.sensor_id, h.timestamp, h.value
    FROM unnest(CAST(:ids AS text[]), CAST(:befores AS timestamptz[])) AS b(sensor_id, before)
    CROSS JOIN LATERAL (
        SELECT r.timestamp, r.value
        FROM sensor_readings r
        WHERE r.sensor_id = b.sensor_id AND r.timestamp < b.before
        ORDER BY r.timestamp DESC
        LIMIT :n
    ) AS h
    ORDER BY b.sensor_id, h.timestamp
    """
)

_TO_SCORE_SQL = text(
    """
    SELECT b.sensor_id, s.type, r.timestamp, r.value
    FROM unnest(CAST(:ids AS text[]), CAST(:starts AS timestamptz[]), CAST(:inclusive AS boolean[]))
         AS b(sensor_id, start, inclusive)
    JOIN sensors s ON s.sensor_id = b.sensor_id
    CROSS JOIN LATERAL (
        SELECT x.timestamp, x.value FROM sensor_readings x
        WHERE x.sensor_id = b.sensor_id AND x.timestamp >= b.start AND x.timestamp <= :last
          AND (b.inclusive OR x.timestamp > b.start)
        OFFSET 0  -- not flattened: one index range scan per sensor (else a hash join over every reading)
    ) r
    ORDER BY b.sensor_id, r.timestamp
    """
)

_INSERT_SQL = text(
    """
    INSERT INTO anomalies (sensor_id, timestamp, value, score, method, model_name, model_version)
    SELECT * FROM unnest(
        CAST(:sensor_ids AS text[]),
        CAST(:timestamps AS timestamptz[]),
        CAST(:values AS double precision[]),
        CAST(:scores AS double precision[]),
        CAST(:methods AS text[]),
        CAST(:model_names AS text[]),
        CAST(:model_versions AS text[])
    )
    ON CONFLICT (sensor_id, timestamp, method) DO NOTHING
    RETURNING id, sensor_id, timestamp, value, score, method, model_name, model_version
    """
)


class AnomalyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def readings_to_score(
        self,
        sensor_ids: Sequence[str],
        first: datetime,
        last: datetime,
        after: Mapping[str, datetime] | None = None,
    ) -> list[ReadingToScore]:
        """Readings of ``sensor_ids`` up to ``last`` with their sensor's type, by sensor then time: from ``first``
        (inclusive), or for a sensor in ``after`` from just after ``after[sensor]`` (one index range each)."""
        if not sensor_ids:
            return []
        after = after or {}
        ids = list(sensor_ids)
        starts = [after.get(s, first) for s in ids]
        inclusive = [s not in after for s in ids]
        rows = await self._session.execute(
            _TO_SCORE_SQL, {"ids": ids, "starts": starts, "inclusive": inclusive, "last": last}
        )
        make = ReadingToScore._make  # tuple.__new__ from the row: no Python-level __new__ per reading
        return [make(row) for row in rows]

    async def history_before(self, before: Mapping[str, datetime], limit: int) -> dict[str, History]:
        """Per sensor, its last ``limit`` readings strictly before ``before[sensor]`` (one index scan each)."""
        out: dict[str, History] = {sensor_id: History([], []) for sensor_id in before}
        if not before:
            return out
        rows = await self._session.execute(
            _HISTORY_SQL, {"ids": list(before), "befores": list(before.values()), "n": limit}
        )
        for sensor_id, timestamp, value in rows:
            history = out[sensor_id]
            history.timestamps.append(timestamp)
            history.values.append(float(value))
        return out

    async def context_before(
        self, before: Mapping[str, datetime], limit: int
    ) -> dict[str, list[tuple[datetime, float]]]:
        """Per sensor, its last ``limit`` ``(timestamp, value)`` readings strictly before ``before[sensor]``,
        oldest first (the history a champion model sees in front of the new readings)."""
        out: dict[str, list[tuple[datetime, float]]] = {sensor_id: [] for sensor_id in before}
        if not before or limit <= 0:
            return out
        rows = await self._session.execute(
            _HISTORY_SQL, {"ids": list(before), "befores": list(before.values()), "n": limit}
        )
        for sensor_id, timestamp, value in rows:
            out[sensor_id].append((timestamp, float(value)))
        return out

    async def insert_new(self, anomalies: Sequence[NewAnomaly]) -> list[StoredAnomaly]:
        """Insert ``anomalies``; rows whose (sensor_id, timestamp, method) exists are skipped. Returns the new
        rows only (re-scoring the same readings inserts nothing)."""
        if not anomalies:
            return []
        columns = list(zip(*anomalies, strict=True))
        params = {
            "sensor_ids": list(columns[0]),
            "timestamps": list(columns[1]),
            "values": [float(v) for v in columns[2]],
            "scores": [float(v) for v in columns[3]],
            "methods": list(columns[4]),
            "model_names": list(columns[5]),
            "model_versions": list(columns[6]),
        }
        rows = await self._session.execute(_INSERT_SQL, params)
        return sorted((StoredAnomaly(*row) for row in rows), key=lambda a: a.id)


__all__ = ["AnomalyRepository", "History", "NewAnomaly", "ReadingToScore", "StoredAnomaly"]
