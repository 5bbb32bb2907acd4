"""Upgrading a populated plain database to the TimescaleDB branch materialises all of its history (issue 12:
revision 0002 alone left the continuous aggregate with the last 3 days after its first refresh). Needs
``SM_TEST_TIMESCALE_URL``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from core.config import to_libpq_url
from tests.support.db import private_database, upgrade

DAYS = 30


async def _load(url: str) -> int:
    """Two sensors, one reading every 10 minutes over 30 days; the number of hourly buckets."""
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        await conn.execute("INSERT INTO sensors (sensor_id, type) VALUES ('up-a', 'vibration'), ('up-b', 'vibration')")
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
        rows = [
            (end - timedelta(minutes=10 * i), sid, float(i % 97))
            for sid in ("up-a", "up-b")
            for i in range(DAYS * 24 * 6)
        ]
        await conn.copy_records_to_table("sensor_readings", records=rows, columns=["timestamp", "sensor_id", "value"])
        return 2 * (DAYS * 24 + 1)  # the newest reading, on the hour, opens one more bucket per sensor
    finally:
        await conn.close()


async def _materialised(url: str) -> tuple[int, int]:
    """Rows of the aggregate's materialised part alone, and hourly buckets over the raw readings."""
    conn = await asyncpg.connect(to_libpq_url(url))
    try:
        await conn.execute("ALTER MATERIALIZED VIEW sensor_readings_hourly SET (timescaledb.materialized_only = true)")
        materialised = await conn.fetchval(
            "SELECT count(*) FROM sensor_readings_hourly h JOIN ("
            "  SELECT time_bucket(INTERVAL '1 hour', timestamp) AS bucket, sensor_id, count(*) AS n,"
            "         sum(value) AS total FROM sensor_readings GROUP BY 1, 2) r"
            " ON r.bucket = h.bucket AND r.sensor_id = h.sensor_id"
            " WHERE r.n = h.reading_count AND abs(r.total - h.avg_value * h.reading_count) < 1e-6"
        )
        raw = await conn.fetchval(
            "SELECT count(*) FROM (SELECT DISTINCT time_bucket(INTERVAL '1 hour', timestamp), sensor_id "
            "FROM sensor_readings) b"
        )
        return int(materialised), int(raw)
    finally:
        await conn.close()


def test_upgrading_thirty_days_of_plain_data_materialises_every_hour(timescale_admin_url: str) -> None:
    with private_database(timescale_admin_url, "sm_ts_up", migrate=False) as url:
        upgrade(url, "0001")  # the plain tables, before TimescaleDB
        buckets = asyncio.run(_load(url))
        upgrade(url)  # 0002 makes the hypertable and the aggregate; 0006 materialises the history
        materialised, raw = asyncio.run(_materialised(url))
    assert raw == buckets
    assert materialised == raw  # every hourly bucket, equal to the raw readings (count and sum)
