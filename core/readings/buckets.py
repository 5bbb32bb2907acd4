"""The SQL of bucketed readings and the choice of its source (re-exported by ``queries.py``).

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

from datetime import UTC, datetime, timedelta
from enum import StrEnum

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
    # The API's ``agg=count``; an enum member may shadow ``str.count``, mypy reads it as an override (mypy#14494).
    count = "count"  # type: ignore[assignment]


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


def to_internal(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def stale_hours(
    invalidations: list[tuple[int, int]], *, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Whole hours of ``[start, end)`` touched by ``invalidations`` (inclusive internal-time ranges), merged.

    ``start`` and ``end`` are hour-aligned. Each range widens to the hours it touches, so that the aggregate's
    rows and the raw rows that replace them never overlap.
    """
    spans: list[tuple[datetime, datetime]] = []
    first, stop = to_internal(start), to_internal(end)
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


__all__ = [
    "BUCKET_WIDTH",
    "DATE_BIN_ORIGIN",
    "HOURLY_VIEW",
    "Agg",
    "Bucket",
    "BucketSource",
    "bucket_sql",
    "choose_bucket_source",
    "stale_hours",
    "to_internal",
]
