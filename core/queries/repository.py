"""Read-side queries of the query API (issue 4 point 6): assets, sensors with their last reading, readings raw or
bucketed, anomalies and alerts. SQL only here; services decide limits, cursors and defaults. The SQL of bucketed
readings and the choice of its source are in ``core/readings/buckets.py`` (re-exported here); incidents are read
by ``core/queries/incident_repository.py``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, func, select, text, true
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from core.alerts.models import Alert
from core.anomaly.models import Anomaly
from core.db import timescale
from core.db.capabilities import Capabilities, capabilities
from core.db.pages import equal_to, fetch_page
from core.fleet.models import Asset, Sensor
from core.paging import PageRequest, parse_sort, sort_order
from core.queries.schemas import AlertFilter, AnomalyFilter, AssetFilter, SensorFilter
from core.readings.buckets import (
    BUCKET_WIDTH,
    Agg,
    Bucket,
    BucketSource,
    bucket_sql,
    choose_bucket_source,
    stale_hours,
    to_internal,
)
from core.readings.models import SensorReading

log = logging.getLogger(__name__)

_PENDING_SQL = text(timescale.PENDING_INVALIDATIONS_SQL)
_RAW_SQL = text(
    'SELECT "timestamp", value, quality FROM sensor_readings '
    'WHERE sensor_id = :sensor_id AND "timestamp" >= :start AND "timestamp" < :end '
    'ORDER BY "timestamp" LIMIT :limit'
)


class SensorRow(NamedTuple):
    sensor: Sensor
    last_reading_at: datetime | None
    last_reading_value: float | None


@dataclass(frozen=True, slots=True)
class Point:
    """A raw reading (``count`` None) or a bucket (``quality`` None)."""

    timestamp: datetime
    value: float
    count: int | None
    quality: float | None


def _order(sort: str, columns: dict[str, Any], tie: Any) -> tuple[Any, ...]:
    """ORDER BY of a ``sort`` parameter (``name`` or ``-name``) over ``columns``, then ``tie``."""
    name, descending = parse_sort(sort)
    return sort_order(columns[name], tie, descending=descending)


class QueryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- capabilities ---------------------------------------------------------------------------------------
    async def capabilities(self) -> Capabilities:
        """Whether TimescaleDB and the hourly continuous aggregate exist (``core.db.capabilities``, cached)."""
        return await capabilities(self._session)

    # --- assets ---------------------------------------------------------------------------------------------
    async def list_assets(self, where: AssetFilter, page: PageRequest) -> tuple[list[Asset], int]:
        conditions = equal_to((Asset.site, where.site), (Asset.kind, where.kind))
        columns = {"id": Asset.id, "name": Asset.name, "site": Asset.site, "created_at": Asset.created_at}
        order = _order(page.sort, columns, Asset.id)
        return await fetch_page(self._session, Asset, conditions, order, limit=page.limit, offset=page.offset)

    # --- sensors --------------------------------------------------------------------------------------------
    @staticmethod
    def _sensor_select() -> tuple[Select[Any], Any]:
        """Sensors with their latest reading: one LATERAL top-1 per sensor on (sensor_id, timestamp DESC)."""
        last = (
            select(SensorReading.timestamp.label("ts"), SensorReading.value.label("value"))
            .where(SensorReading.sensor_id == Sensor.sensor_id)
            .order_by(SensorReading.timestamp.desc())
            .limit(1)
            .lateral("last_reading")
        )
        stmt = select(Sensor, last.c.ts, last.c.value).outerjoin(last, true())
        return stmt, last

    async def list_sensors(self, where: SensorFilter, page: PageRequest) -> tuple[list[SensorRow], int]:
        conditions = equal_to(
            (Sensor.type, where.type),
            (Sensor.asset_id, where.asset_id),
            (Sensor.status, where.status),
        )
        stmt, last = self._sensor_select()
        columns = {
            "sensor_id": Sensor.sensor_id,
            "type": Sensor.type,
            "created_at": Sensor.created_at,
            "last_reading_at": last.c.ts,
        }
        stmt = stmt.where(*conditions).order_by(*_order(page.sort, columns, Sensor.sensor_id))
        result = await self._session.execute(stmt.limit(page.limit).offset(page.offset))
        rows = [SensorRow(sensor, ts, value) for sensor, ts, value in result.all()]
        total = await self._session.scalar(select(func.count()).select_from(Sensor).where(*conditions))
        return rows, int(total or 0)

    async def sensor_exists(self, sensor_id: str) -> bool:
        """Whether the sensor is registered (a primary-key probe, without the latest-reading lookup)."""
        found = await self._session.scalar(select(Sensor.sensor_id).where(Sensor.sensor_id == sensor_id))
        return found is not None

    async def get_sensor(self, sensor_id: str) -> SensorRow | None:
        stmt, _ = self._sensor_select()
        row = (await self._session.execute(stmt.where(Sensor.sensor_id == sensor_id))).first()
        return None if row is None else SensorRow(row[0], row[1], row[2])

    # --- readings -------------------------------------------------------------------------------------------
    async def raw_readings(
        self, sensor_id: str, *, start: datetime, end: datetime, limit: int
    ) -> list[Point]:
        result = await self._session.execute(
            _RAW_SQL, {"sensor_id": sensor_id, "start": start, "end": end, "limit": limit}
        )
        return [Point(ts, value, None, quality) for ts, value, quality in result.all()]

    async def pending_invalidations(self, *, start: datetime, end: datetime) -> list[tuple[int, int]] | None:
        """Invalidations of the hourly aggregate not yet processed that overlap ``[start, end)``; None when the
        TimescaleDB catalog cannot be read (then nothing of the aggregate can be trusted)."""
        try:
            async with self._session.begin_nested():
                rows = await self._session.execute(
                    _PENDING_SQL, {"lo": to_internal(start), "hi": to_internal(end)}
                )
                return [(int(lo), int(hi)) for lo, hi in rows]
        except DBAPIError as exc:
            log.warning("cannot read the hourly aggregate's invalidations, using raw readings: %s", exc)
            return None

    async def bucketed_readings(
        self,
        sensor_id: str,
        *,
        bucket: Bucket,
        agg: Agg,
        source: BucketSource,
        start: datetime,
        end: datetime,
        limit: int,
    ) -> tuple[BucketSource, list[Point]]:
        """The buckets and the source that answered (the aggregate falls back to ``time_bucket`` when its
        invalidations cannot be read)."""
        params: dict[str, Any] = {"sensor_id": sensor_id, "start": start, "end": end, "limit": limit}
        if source is BucketSource.hourly_aggregate:
            pending = await self.pending_invalidations(start=start, end=end)
            if pending is None:
                source = BucketSource.time_bucket
            else:
                stale = stale_hours(pending, start=start, end=end)
                params["stale_lo"] = [lo for lo, _ in stale]
                params["stale_hi"] = [hi for _, hi in stale]
        result = await self._session.execute(text(bucket_sql(bucket, agg, source)), params)
        return source, [Point(ts, float(value), int(count), None) for ts, value, count in result.all()]

    # --- anomalies and alerts -------------------------------------------------------------------------------
    async def list_anomalies(self, where: AnomalyFilter, page: PageRequest) -> tuple[list[Anomaly], int]:
        conditions = equal_to((Anomaly.sensor_id, where.sensor_id), (Anomaly.method, where.method))
        if where.start is not None:
            conditions.append(Anomaly.timestamp >= where.start)
        if where.end is not None:
            conditions.append(Anomaly.timestamp < where.end)
        if where.min_score is not None:
            conditions.append(Anomaly.score >= where.min_score)
        columns = {"timestamp": Anomaly.timestamp, "score": Anomaly.score}
        order = _order(page.sort, columns, Anomaly.id)
        return await fetch_page(self._session, Anomaly, conditions, order, limit=page.limit, offset=page.offset)

    async def list_alerts(self, where: AlertFilter, page: PageRequest) -> tuple[list[Alert], int]:
        conditions = equal_to(
            (Alert.status, where.status),
            (Alert.severity, where.severity),
            (Alert.sensor_id, where.sensor_id),
            (Alert.rule, where.rule),
        )
        columns = {"opened_at": Alert.opened_at, "anomaly_count": Alert.anomaly_count, "id": Alert.id}
        order = _order(page.sort, columns, Alert.id)
        return await fetch_page(self._session, Alert, conditions, order, limit=page.limit, offset=page.offset)


__all__ = [
    "BUCKET_WIDTH",
    "Agg",
    "Bucket",
    "Point",
    "QueryRepository",
    "SensorRow",
    "choose_bucket_source",
]
