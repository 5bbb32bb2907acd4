"""Read-side queries of the query API (issue 4 point 6): assets, sensors with their last reading, readings raw or
bucketed, anomalies and alerts. SQL only here; services decide limits, cursors and defaults.

Bucketed readings come from one of three sources (``choose_bucket_source``):

* ``hourly_aggregate``: the ``sensor_readings_hourly`` continuous aggregate (TimescaleDB with the aggregate
  present, bucket ``1h`` or ``1d``, range aligned to whole hours so the aggregate covers it exactly); ``1d``
  re-aggregates the hourly rows (avg weighted by ``reading_count``, min of mins, max of maxes, sum of counts).
  The aggregate's rows are used only for hours it has materialised *and* that have no pending invalidation
  (late data or a back-fill the refresh policy has not processed yet, ranges never materialised, everything
  above the watermark); those hours are computed from raw readings in the same statement
  (``pending_invalidations``). So the answer always equals a ``time_bucket`` over the raw readings, whatever
  the data's age, at the cost of scanning raw rows only where the aggregate is stale;
* ``time_bucket``: TimescaleDB without the aggregate (or a range the aggregate does not cover), over raw rows;
* ``date_bin``: plain PostgreSQL, over raw rows (the fallback ``sensor_readings_hourly`` view is itself a live
  ``date_bin`` over every row, so reading the raw table directly is the same result with the range pushed down).

Every bucket starts on the UTC grid anchored at 2000-01-01 00:00 UTC (``time_bucket``'s default grid for these
widths), so all three sources return the same buckets.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, func, select, text, true
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import timescale
from core.db.models import Alert, Anomaly, Asset, Sensor, SensorReading

log = logging.getLogger(__name__)

HOURLY_VIEW = "sensor_readings_hourly"
DATE_BIN_ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"


class Bucket(StrEnum):
    m1 = "1m"
    m5 = "5m"
    h1 = "1h"
    d1 = "1d"


class Agg(StrEnum):
    avg = "avg"
    min = "min"
    max = "max"
    count = "count"


class BucketSource(StrEnum):
    hourly_aggregate = "hourly_aggregate"
    time_bucket = "time_bucket"
    date_bin = "date_bin"


BUCKET_WIDTH: dict[Bucket, timedelta] = {
    Bucket.m1: timedelta(minutes=1),
    Bucket.m5: timedelta(minutes=5),
    Bucket.h1: timedelta(hours=1),
    Bucket.d1: timedelta(days=1),
}
_INTERVAL_SQL = {
    Bucket.m1: "INTERVAL '1 minute'",
    Bucket.m5: "INTERVAL '5 minutes'",
    Bucket.h1: "INTERVAL '1 hour'",
    Bucket.d1: "INTERVAL '1 day'",
}


def _hour_aligned(value: datetime) -> bool:
    return (
        value.minute == 0 and value.second == 0 and value.microsecond == 0 and value.utcoffset() is not None
    )


def choose_bucket_source(
    bucket: Bucket, *, timescale: bool, hourly_aggregate: bool, start: datetime, end: datetime
) -> BucketSource:
    """Where bucketed readings come from (see the module docstring)."""
    if not timescale:
        return BucketSource.date_bin
    covered = _hour_aligned(start) and _hour_aligned(end)
    if hourly_aggregate and bucket in (Bucket.h1, Bucket.d1) and covered:
        return BucketSource.hourly_aggregate
    return BucketSource.time_bucket


#: The hourly rows of ``:sensor_id`` in ``[:start, :end)``: the aggregate's own rows outside the stale ranges
#: ``[:stale_lo[i], :stale_hi[i])`` (whole hours, disjoint, inside the range), raw readings bucketed by hour
#: inside them.
_HOURLY_CTE = f"""\
WITH stale AS (
    SELECT lo, hi FROM unnest(CAST(:stale_lo AS timestamptz[]), CAST(:stale_hi AS timestamptz[])) AS d(lo, hi)
), h AS (
    SELECT a.bucket, a.avg_value, a.min_value, a.max_value, a.reading_count
    FROM {HOURLY_VIEW} AS a
    WHERE a.sensor_id = :sensor_id AND a.bucket >= :start AND a.bucket < :end
      AND NOT EXISTS (SELECT 1 FROM stale WHERE a.bucket >= stale.lo AND a.bucket < stale.hi)
    UNION ALL
    SELECT time_bucket(INTERVAL '1 hour', r."timestamp"), avg(r.value), min(r.value), max(r.value), count(*)
    FROM stale JOIN sensor_readings AS r
      ON r.sensor_id = :sensor_id AND r."timestamp" >= stale.lo AND r."timestamp" < stale.hi
    GROUP BY 1
)"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR = timedelta(hours=1)


def _from_internal(value: int, *, low: datetime, high: datetime) -> datetime:
    """TimescaleDB's internal time (microseconds since the Unix epoch) as a datetime clamped to [low, high]."""
    try:
        moment = _EPOCH + timedelta(microseconds=value)
    except OverflowError:
        return low if value < 0 else high
    return min(max(moment, low), high)


def _to_internal(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def stale_hours(
    invalidations: list[tuple[int, int]], *, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Whole hours of ``[start, end)`` touched by ``invalidations`` (inclusive internal-time ranges), merged.

    ``start`` and ``end`` are hour-aligned. Each range widens to the hours it touches, so that the aggregate's
    rows and the raw rows that replace them never overlap.
    """
    spans: list[tuple[datetime, datetime]] = []
    first, stop = _to_internal(start), _to_internal(end)
    for lowest, greatest in invalidations:
        if greatest < first or lowest >= stop:
            continue
        lo = _from_internal(lowest, low=start, high=end)
        hi = _from_internal(greatest, low=start, high=end)
        lo -= (lo - start) % _HOUR
        hi = min(hi - (hi - start) % _HOUR + _HOUR, end)
        if lo < hi:
            spans.append((lo, hi))
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def bucket_sql(bucket: Bucket, agg: Agg, source: BucketSource) -> str:
    """SELECT bucket, value, count for ``:sensor_id`` in ``[:start, :end)``, ascending, at most ``:limit`` rows.

    Rendered text only (unit-tested for every source); the caller moves ``:start`` past a cursor. The
    ``hourly_aggregate`` text also takes ``:stale_lo`` and ``:stale_hi`` (``stale_hours``).
    """
    width = _INTERVAL_SQL[bucket]
    if source is BucketSource.hourly_aggregate:
        if bucket not in (Bucket.h1, Bucket.d1):
            raise ValueError(f"the hourly aggregate serves 1h and 1d buckets, not {bucket}")
        if bucket is Bucket.h1:
            value = {
                Agg.avg: "avg_value",
                Agg.min: "min_value",
                Agg.max: "max_value",
                Agg.count: "CAST(reading_count AS double precision)",
            }[agg]
            return (
                f"{_HOURLY_CTE}\n"
                f"SELECT bucket AS bucket, {value} AS value, CAST(reading_count AS bigint) AS count\n"
                "FROM h\nORDER BY bucket\nLIMIT :limit"
            )
        value = {
            Agg.avg: "sum(avg_value * reading_count) / sum(reading_count)",
            Agg.min: "min(min_value)",
            Agg.max: "max(max_value)",
            Agg.count: "CAST(sum(reading_count) AS double precision)",
        }[agg]
        return (
            f"{_HOURLY_CTE}\n"
            f"SELECT time_bucket({width}, h.bucket) AS day, {value} AS value, "
            "CAST(sum(reading_count) AS bigint) AS count\n"
            "FROM h\nGROUP BY day\nORDER BY day\nLIMIT :limit"
        )
    if source is BucketSource.time_bucket:
        expr = f'time_bucket({width}, "timestamp")'
    else:
        expr = f'date_bin({width}, "timestamp", {DATE_BIN_ORIGIN})'
    value = {
        Agg.avg: "avg(value)",
        Agg.min: "min(value)",
        Agg.max: "max(value)",
        Agg.count: "CAST(count(*) AS double precision)",
    }[agg]
    return (
        f"SELECT {expr} AS b, {value} AS value, count(*) AS count\n"
        "FROM sensor_readings\n"
        'WHERE sensor_id = :sensor_id AND "timestamp" >= :start AND "timestamp" < :end\n'
        "GROUP BY b\nORDER BY b\nLIMIT :limit"
    )


_TIMESCALE_SQL = text("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
_CAGG_SQL = text(timescale.hourly_cagg_exists_sql())
_PENDING_SQL = text(timescale.PENDING_INVALIDATIONS_SQL)
_RAW_SQL = text(
    'SELECT "timestamp", value, quality FROM sensor_readings '
    'WHERE sensor_id = :sensor_id AND "timestamp" >= :start AND "timestamp" < :end '
    'ORDER BY "timestamp" LIMIT :limit'
)


#: How long the answer of ``capabilities()`` is reused (seconds).
CAPABILITIES_TTL_S = 300.0


@dataclass(frozen=True, slots=True)
class Capabilities:
    timescale: bool
    hourly_aggregate: bool


_capabilities_cache: dict[str, tuple[float, Capabilities]] = {}


class SensorRow(NamedTuple):
    sensor: Sensor
    last_reading_at: datetime | None
    last_reading_value: float | None


class Point(NamedTuple):
    timestamp: datetime
    value: float
    count: int | None
    quality: float | None


def _desc(sort: str) -> bool:
    return sort.startswith("-")


def _order(sort: str, columns: dict[str, Any], tie: Any) -> list[Any]:
    column = columns[sort.lstrip("-")]
    primary = column.desc().nulls_last() if _desc(sort) else column.asc().nulls_last()
    return [primary, tie.desc() if _desc(sort) else tie.asc()]


class QueryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- capabilities ---------------------------------------------------------------------------------------
    async def capabilities(self) -> Capabilities:
        """Whether TimescaleDB and the hourly continuous aggregate exist: a property of the database that only a
        migration changes, so it is asked once per database and ``CAPABILITIES_TTL_S`` (not per request)."""
        key = self._session.bind.url.render_as_string(hide_password=True)
        cached = _capabilities_cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CAPABILITIES_TTL_S:
            return cached[1]
        timescale = bool(await self._session.scalar(_TIMESCALE_SQL))
        cagg = bool(await self._session.scalar(_CAGG_SQL)) if timescale else False
        caps = Capabilities(timescale=timescale, hourly_aggregate=cagg)
        _capabilities_cache[key] = (now, caps)
        return caps

    # --- assets ---------------------------------------------------------------------------------------------
    async def list_assets(
        self, *, site: str | None, kind: str | None, sort: str, limit: int, offset: int
    ) -> tuple[list[Asset], int]:
        conditions: list[ColumnElement[bool]] = []
        if site is not None:
            conditions.append(Asset.site == site)
        if kind is not None:
            conditions.append(Asset.kind == kind)
        columns = {"id": Asset.id, "name": Asset.name, "site": Asset.site, "created_at": Asset.created_at}
        stmt = select(Asset).where(*conditions).order_by(*_order(sort, columns, Asset.id))
        rows = (await self._session.execute(stmt.limit(limit).offset(offset))).scalars().all()
        total = await self._session.scalar(select(func.count()).select_from(Asset).where(*conditions))
        return list(rows), int(total or 0)

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

    async def list_sensors(
        self,
        *,
        type: str | None,
        asset_id: int | None,
        status: str | None,
        sort: str,
        limit: int,
        offset: int,
    ) -> tuple[list[SensorRow], int]:
        conditions: list[ColumnElement[bool]] = []
        if type is not None:
            conditions.append(Sensor.type == type)
        if asset_id is not None:
            conditions.append(Sensor.asset_id == asset_id)
        if status is not None:
            conditions.append(Sensor.status == status)
        stmt, last = self._sensor_select()
        columns = {
            "sensor_id": Sensor.sensor_id,
            "type": Sensor.type,
            "created_at": Sensor.created_at,
            "last_reading_at": last.c.ts,
        }
        stmt = stmt.where(*conditions).order_by(*_order(sort, columns, Sensor.sensor_id))
        result = await self._session.execute(stmt.limit(limit).offset(offset))
        rows = [SensorRow(sensor, ts, value) for sensor, ts, value in result.all()]
        total = await self._session.scalar(select(func.count()).select_from(Sensor).where(*conditions))
        return rows, int(total or 0)

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
                    _PENDING_SQL, {"lo": _to_internal(start), "hi": _to_internal(end)}
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
    async def list_anomalies(
        self,
        *,
        sensor_id: str | None,
        start: datetime | None,
        end: datetime | None,
        method: str | None,
        min_score: float | None,
        sort: str,
        limit: int,
        offset: int,
    ) -> tuple[list[Anomaly], int]:
        conditions: list[ColumnElement[bool]] = []
        if sensor_id is not None:
            conditions.append(Anomaly.sensor_id == sensor_id)
        if start is not None:
            conditions.append(Anomaly.timestamp >= start)
        if end is not None:
            conditions.append(Anomaly.timestamp < end)
        if method is not None:
            conditions.append(Anomaly.method == method)
        if min_score is not None:
            conditions.append(Anomaly.score >= min_score)
        columns = {"timestamp": Anomaly.timestamp, "score": Anomaly.score}
        stmt = select(Anomaly).where(*conditions).order_by(*_order(sort, columns, Anomaly.id))
        rows = (await self._session.execute(stmt.limit(limit).offset(offset))).scalars().all()
        total = await self._session.scalar(select(func.count()).select_from(Anomaly).where(*conditions))
        return list(rows), int(total or 0)

    async def list_alerts(
        self,
        *,
        status: str | None,
        severity: str | None,
        sensor_id: str | None,
        rule: str | None,
        sort: str,
        limit: int,
        offset: int,
    ) -> tuple[list[Alert], int]:
        conditions: list[ColumnElement[bool]] = []
        if status is not None:
            conditions.append(Alert.status == status)
        if severity is not None:
            conditions.append(Alert.severity == severity)
        if sensor_id is not None:
            conditions.append(Alert.sensor_id == sensor_id)
        if rule is not None:
            conditions.append(Alert.rule == rule)
        columns = {"opened_at": Alert.opened_at, "anomaly_count": Alert.anomaly_count, "id": Alert.id}
        stmt = select(Alert).where(*conditions).order_by(*_order(sort, columns, Alert.id))
        rows = (await self._session.execute(stmt.limit(limit).offset(offset))).scalars().all()
        total = await self._session.scalar(select(func.count()).select_from(Alert).where(*conditions))
        return list(rows), int(total or 0)


__all__ = [
    "BUCKET_WIDTH",
    "Agg",
    "Bucket",
    "BucketSource",
    "Capabilities",
    "Point",
    "QueryRepository",
    "SensorRow",
    "bucket_sql",
    "choose_bucket_source",
    "stale_hours",
]
