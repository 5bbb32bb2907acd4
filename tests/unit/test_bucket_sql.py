"""The bucket-source choice of the readings query and the SQL it renders, for both database branches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.readings.buckets import (
    Agg,
    Bucket,
    BucketSource,
    bucket_sql,
    choose_bucket_source,
    stale_hours,
)

ALIGNED = (datetime(2026, 11, 25, 8, tzinfo=UTC), datetime(2026, 11, 26, 8, tzinfo=UTC))
UNALIGNED = (datetime(2026, 11, 25, 8, 30, tzinfo=UTC), datetime(2026, 11, 26, 8, tzinfo=UTC))


def _choose(
    bucket: Bucket, timescale: bool, cagg: bool, span: tuple[datetime, datetime] = ALIGNED
) -> BucketSource:
    return choose_bucket_source(
        bucket, timescale=timescale, hourly_aggregate=cagg, start=span[0], end=span[1]
    )


@pytest.mark.parametrize("bucket", list(Bucket))
def test_plain_postgresql_always_date_bins_raw_rows(bucket: Bucket) -> None:
    assert _choose(bucket, timescale=False, cagg=False) is BucketSource.date_bin
    assert (
        _choose(bucket, timescale=False, cagg=True) is BucketSource.date_bin
    )  # the plain view is live anyway


@pytest.mark.parametrize("bucket", [Bucket.h1, Bucket.d1])
def test_timescale_hourly_and_daily_use_the_continuous_aggregate_when_it_covers_the_range(
    bucket: Bucket,
) -> None:
    assert _choose(bucket, timescale=True, cagg=True) is BucketSource.hourly_aggregate
    assert _choose(bucket, timescale=True, cagg=True, span=UNALIGNED) is BucketSource.time_bucket
    assert _choose(bucket, timescale=True, cagg=False) is BucketSource.time_bucket


@pytest.mark.parametrize("bucket", [Bucket.m1, Bucket.m5])
def test_timescale_minute_buckets_use_time_bucket(bucket: Bucket) -> None:
    assert _choose(bucket, timescale=True, cagg=True) is BucketSource.time_bucket


@pytest.mark.parametrize(
    ("bucket", "interval"),
    [(Bucket.m1, "1 minute"), (Bucket.m5, "5 minutes"), (Bucket.h1, "1 hour"), (Bucket.d1, "1 day")],
)
def test_date_bin_sql(bucket: Bucket, interval: str) -> None:
    sql = bucket_sql(bucket, Agg.avg, BucketSource.date_bin)
    assert f"date_bin(INTERVAL '{interval}', \"timestamp\", TIMESTAMPTZ '2000-01-01 00:00:00+00')" in sql
    assert "FROM sensor_readings\n" in sql
    assert "time_bucket" not in sql and "sensor_readings_hourly" not in sql
    assert 'sensor_id = :sensor_id AND "timestamp" >= :start AND "timestamp" < :end' in sql
    assert sql.rstrip().endswith("ORDER BY b\nLIMIT :limit")


@pytest.mark.parametrize(
    ("agg", "expr"),
    [
        (Agg.avg, "avg(value)"),
        (Agg.min, "min(value)"),
        (Agg.max, "max(value)"),
        (Agg.count, "CAST(count(*) AS double precision)"),
    ],
)
def test_time_bucket_sql_per_aggregate(agg: Agg, expr: str) -> None:
    sql = bucket_sql(Bucket.m5, agg, BucketSource.time_bucket)
    assert sql.startswith(f"SELECT time_bucket(INTERVAL '5 minutes', \"timestamp\") AS b, {expr} AS value")
    assert "FROM sensor_readings\n" in sql and "date_bin" not in sql
    assert "GROUP BY b" in sql


@pytest.mark.parametrize(
    ("agg", "expr"),
    [(Agg.avg, "avg_value"), (Agg.min, "min_value"), (Agg.max, "max_value"), (Agg.count, "reading_count")],
)
def test_hourly_aggregate_sql_reads_the_rollup_rows(agg: Agg, expr: str) -> None:
    sql = bucket_sql(Bucket.h1, agg, BucketSource.hourly_aggregate)
    select = next(line for line in sql.split("\n") if line.startswith("SELECT bucket AS bucket"))
    assert expr in select
    assert "FROM sensor_readings_hourly AS a" in sql
    assert "a.bucket >= :start AND a.bucket < :end" in sql
    # stale hours: the aggregate's rows are excluded there and raw readings bucketed by hour replace them
    assert "NOT EXISTS (SELECT 1 FROM stale WHERE a.bucket >= stale.lo AND a.bucket < stale.hi)" in sql
    assert "FROM stale JOIN sensor_readings AS r" in sql
    assert 'r."timestamp" >= stale.lo AND r."timestamp" < stale.hi' in sql


def test_daily_from_hourly_weights_the_average_by_count() -> None:
    sql = bucket_sql(Bucket.d1, Agg.avg, BucketSource.hourly_aggregate)
    assert "time_bucket(INTERVAL '1 day', h.bucket)" in sql
    assert "sum(avg_value * reading_count) / sum(reading_count) AS value" in sql
    assert "CAST(sum(reading_count) AS bigint) AS count" in sql
    assert "FROM h\nGROUP BY day" in sql and "FROM sensor_readings_hourly AS a" in sql
    assert "min(min_value)" in bucket_sql(Bucket.d1, Agg.min, BucketSource.hourly_aggregate)
    assert "max(max_value)" in bucket_sql(Bucket.d1, Agg.max, BucketSource.hourly_aggregate)
    assert "sum(reading_count) AS double precision" in bucket_sql(
        Bucket.d1, Agg.count, BucketSource.hourly_aggregate
    )


_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _internal(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def test_stale_hours_widen_to_whole_hours_clip_and_merge() -> None:
    start, end = _T0, _T0 + timedelta(hours=10)
    minute = timedelta(minutes=1)
    invalidations = [
        # one late reading at 02:30 -> the hour 02:00-03:00
        (_internal(_T0 + timedelta(hours=2, minutes=30)),) * 2,
        # 04:59 .. 05:00 inclusive touches 04:00 and 05:00, overlapping the next one -> merged
        (_internal(_T0 + timedelta(hours=5) - minute), _internal(_T0 + timedelta(hours=5))),
        (_internal(_T0 + timedelta(hours=5, minutes=10)), _internal(_T0 + timedelta(hours=6) - minute)),
        # never materialised: everything above the watermark, to +infinity (TimescaleDB's int64 maximum)
        (_internal(_T0 + timedelta(hours=8)), 2**63 - 1),
        # before the range, from -infinity: clipped away
        (-(2**63), _internal(_T0 - minute)),
    ]
    assert stale_hours(invalidations, start=start, end=end) == [
        (_T0 + timedelta(hours=2), _T0 + timedelta(hours=3)),
        (_T0 + timedelta(hours=4), _T0 + timedelta(hours=6)),
        (_T0 + timedelta(hours=8), end),
    ]
    assert stale_hours([], start=start, end=end) == []
    assert stale_hours([(-(2**63), 2**63 - 1)], start=start, end=end) == [(start, end)]


@pytest.mark.parametrize("bucket", [Bucket.m1, Bucket.m5])
def test_the_hourly_aggregate_cannot_serve_minute_buckets(bucket: Bucket) -> None:
    with pytest.raises(ValueError, match="1h and 1d"):
        bucket_sql(bucket, Agg.avg, BucketSource.hourly_aggregate)
