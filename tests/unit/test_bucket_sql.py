"""The bucket-source choice of the readings query and the SQL it renders, for both database branches."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.db.repositories.queries import Agg, Bucket, BucketSource, bucket_sql, choose_bucket_source

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
    assert "FROM sensor_readings_hourly\n" in sql
    assert expr in sql.split("\n")[0]
    assert "bucket >= :start AND bucket < :end" in sql
    assert "GROUP BY" not in sql and "FROM sensor_readings\n" not in sql


def test_daily_from_hourly_weights_the_average_by_count() -> None:
    sql = bucket_sql(Bucket.d1, Agg.avg, BucketSource.hourly_aggregate)
    assert "time_bucket(INTERVAL '1 day', h.bucket)" in sql
    assert "sum(avg_value * reading_count) / sum(reading_count) AS value" in sql
    assert "CAST(sum(reading_count) AS bigint) AS count" in sql
    assert "FROM sensor_readings_hourly AS h" in sql and "GROUP BY day" in sql
    assert "min(min_value)" in bucket_sql(Bucket.d1, Agg.min, BucketSource.hourly_aggregate)
    assert "max(max_value)" in bucket_sql(Bucket.d1, Agg.max, BucketSource.hourly_aggregate)
    assert "sum(reading_count) AS double precision" in bucket_sql(
        Bucket.d1, Agg.count, BucketSource.hourly_aggregate
    )


@pytest.mark.parametrize("bucket", [Bucket.m1, Bucket.m5])
def test_the_hourly_aggregate_cannot_serve_minute_buckets(bucket: Bucket) -> None:
    with pytest.raises(ValueError, match="1h and 1d"):
        bucket_sql(bucket, Agg.avg, BucketSource.hourly_aggregate)
