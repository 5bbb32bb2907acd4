"""The TimescaleDB layer's SQL (rendered and asserted) and the plain branch the migration takes on PG 15."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from core.config import load_settings, to_async_url, to_libpq_url
from core.db import timescale
from core.db.timescale import TimescaleOptions

OPTIONS = TimescaleOptions()


def squash(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def test_defaults_follow_the_settings():
    settings = load_settings()
    assert (OPTIONS.compress_after_days, OPTIONS.retention_days) == (7, 180)
    assert (settings.compress_after_days, settings.retention_days) == (7, 180)


def test_hypertable_uses_by_range_without_default_indexes():
    sql = timescale.create_hypertable_sql(OPTIONS)
    assert sql == (
        "SELECT create_hypertable('sensor_readings', by_range('timestamp', INTERVAL '1 day'), "
        "create_default_indexes => false, if_not_exists => true, migrate_data => true)"
    )


def test_compression_is_segmented_by_sensor_and_enabled_once():
    sql = squash(timescale.enable_compression_sql())
    assert "ALTER TABLE sensor_readings SET ( timescaledb.compress," in sql
    assert "timescaledb.compress_segmentby = 'sensor_id'" in sql
    assert "timescaledb.compress_orderby = 'timestamp DESC'" in sql
    assert "IF NOT EXISTS ( SELECT 1 FROM timescaledb_information.hypertables" in sql
    assert "AND compression_enabled" in sql
    assert squash(timescale.compression_policy_sql(OPTIONS)) == (
        "SELECT add_compression_policy('sensor_readings', compress_after => INTERVAL '7 days', "
        "if_not_exists => true)"
    )


def test_retention_policy():
    assert timescale.retention_policy_sql(OPTIONS) == (
        "SELECT add_retention_policy('sensor_readings', drop_after => INTERVAL '180 days', if_not_exists => true)"
    )


def test_intervals_come_from_the_options():
    options = TimescaleOptions(compress_after_days=3, retention_days=30)
    assert "INTERVAL '3 days'" in timescale.compression_policy_sql(options)
    assert "INTERVAL '30 days'" in timescale.retention_policy_sql(options)
    assert timescale.interval(1) == "INTERVAL '1 day'"
    assert timescale.interval("90 minutes") == "INTERVAL '90 minutes'"
    with pytest.raises(ValueError):
        timescale.interval("1 day'; DROP TABLE sensors; --")
    with pytest.raises(ValueError):
        TimescaleOptions(retention_days=0)


def test_hourly_continuous_aggregate():
    sql = squash(timescale.hourly_cagg_sql())
    assert sql.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS sensor_readings_hourly ")
    assert "WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS" in sql
    assert "time_bucket(INTERVAL '1 hour', \"timestamp\") AS bucket" in sql
    for part in (
        "avg(value) AS avg_value",
        "min(value) AS min_value",
        "max(value) AS max_value",
        "count(*) AS reading_count",
        "FROM sensor_readings GROUP BY bucket, sensor_id",
    ):
        assert part in sql
    assert sql.endswith("WITH NO DATA")
    # created in an autocommit block by the migration, never inside the transactional statements
    assert all("CREATE MATERIALIZED VIEW" not in s for s in timescale.timescale_upgrade_statements(OPTIONS))


def test_refresh_policy_reaches_back_as_far_as_late_data_is_accepted():
    """The window is the retention period (ingest accepts readings that old), not a few days (issue 12)."""
    assert timescale.hourly_cagg_policy_sql(OPTIONS) == (
        "SELECT add_continuous_aggregate_policy('sensor_readings_hourly', start_offset => INTERVAL '180 days', "
        "end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes', if_not_exists => true)"
    )
    short = TimescaleOptions(retention_days=30)
    assert "start_offset => INTERVAL '30 days'" in timescale.hourly_cagg_policy_sql(short)
    explicit = TimescaleOptions(retention_days=30, refresh_start_offset="40 days")
    assert "start_offset => INTERVAL '40 days'" in timescale.hourly_cagg_policy_sql(explicit)


def test_full_refresh_covers_all_history():
    assert timescale.refresh_hourly_cagg_sql(OPTIONS) == (
        "CALL refresh_continuous_aggregate('sensor_readings_hourly', NULL, now() - INTERVAL '1 hour')"
    )


def test_upgrade_order_and_idempotency_guards():
    statements = timescale.timescale_upgrade_statements(OPTIONS)
    assert statements[0] == "CREATE EXTENSION IF NOT EXISTS timescaledb"
    names = ["create_hypertable", "timescaledb.compress", "add_compression_policy", "add_retention_policy"]
    positions = [next(i for i, s in enumerate(statements) if name in s) for name in names]
    assert positions == sorted(positions)
    for statement in [*statements, timescale.hourly_cagg_sql(), timescale.hourly_cagg_policy_sql(OPTIONS)]:
        guarded = any(g in statement for g in ("IF NOT EXISTS", "if_not_exists => true", "IF EXISTS"))
        assert guarded, statement
        # one statement per string (asyncpg prepares each one); DO blocks are one statement
        assert statement.startswith("DO $$") or ";" not in statement


def test_plain_view_has_the_same_columns_as_the_aggregate():
    def aliases(sql: str) -> list[str]:
        return ["bucket", "sensor_id", *re.findall(r"\) AS (\w+)", sql.split("AS bucket", 1)[1])]

    plain = timescale.plain_hourly_view_sql()
    assert (
        "date_bin(INTERVAL '1 hour', \"timestamp\", TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket" in plain
    )
    assert "CREATE OR REPLACE VIEW sensor_readings_hourly" in plain
    assert aliases(plain) == aliases(timescale.hourly_cagg_sql()) == list(timescale.HOURLY_COLUMNS)
    assert "live view" in timescale.plain_hourly_view_comment_sql()


def test_downgrade_reverses_the_timescale_branch_and_keeps_the_extension():
    drop_cagg, revert, drop_view = (squash(s) for s in timescale.timescale_downgrade_statements())
    assert "remove_continuous_aggregate_policy('sensor_readings_hourly', if_exists => true)" in drop_cagg
    assert "DROP MATERIALIZED VIEW sensor_readings_hourly" in drop_cagg
    for part in (
        "remove_retention_policy('sensor_readings', if_exists => true)",
        "remove_compression_policy('sensor_readings', if_exists => true)",
        "decompress_chunk(c, if_compressed => true) FROM show_chunks('sensor_readings')",
        "SET (timescaledb.compress = false)",
        "ALTER TABLE sensor_readings RENAME TO sensor_readings_hypertable",
        "INSERT INTO sensor_readings SELECT * FROM sensor_readings_hypertable",
        'ADD CONSTRAINT pk_sensor_readings PRIMARY KEY ("timestamp", sensor_id)',
        'CREATE INDEX ix_sensor_readings_sensor_id_timestamp ON sensor_readings (sensor_id, "timestamp" DESC)',
        (
            "ADD CONSTRAINT fk_sensor_readings_sensor_id_sensors FOREIGN KEY (sensor_id) "
            "REFERENCES sensors (sensor_id) ON DELETE CASCADE"
        ),
    ):
        assert part in revert, part
    assert revert.index("remove_retention_policy") < revert.index("RENAME TO sensor_readings_hypertable")
    assert drop_view == "DROP VIEW IF EXISTS sensor_readings_hourly"
    everything = " ".join(timescale.timescale_downgrade_statements() + timescale.plain_downgrade_statements())
    assert "DROP EXTENSION" not in everything


# --- the plain branch on the test server (PostgreSQL 15 or 18; skipped where it has TimescaleDB) ------------


@pytest.mark.plain_postgres
async def test_detection_says_no_timescaledb_on_the_test_server(database_url):
    engine = create_async_engine(to_async_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            assert await timescale.timescaledb_available(conn) is False
            assert await conn.run_sync(timescale.timescaledb_available_sync) is False
            assert await conn.run_sync(timescale.timescaledb_installed_sync) is False
    finally:
        await engine.dispose()


@pytest.mark.plain_postgres
async def test_migration_took_the_plain_branch_and_the_view_aggregates(database_url):
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'") == 0
        assert await conn.fetchval("SELECT to_regnamespace('timescaledb_information')") is None
        assert (
            await conn.fetchval("SELECT relkind::text FROM pg_class WHERE oid = 'sensor_readings'::regclass")
            == "r"
        )
        assert await conn.fetchval("SELECT count(*) FROM pg_matviews") == 0
        columns = await conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'sensor_readings_hourly' ORDER BY ordinal_position"
        )
        assert [(c["column_name"], c["data_type"]) for c in columns] == [
            ("bucket", "timestamp with time zone"),
            ("sensor_id", "text"),
            ("avg_value", "double precision"),
            ("min_value", "double precision"),
            ("max_value", "double precision"),
            ("reading_count", "bigint"),
        ]
        assert "live view" in await conn.fetchval(
            "SELECT obj_description('sensor_readings_hourly'::regclass)"
        )

        transaction = conn.transaction()  # rolled back: the shared test database stays clean
        await transaction.start()
        try:
            # buckets are UTC hours whatever the session time zone (India is UTC+05:30)
            await conn.execute("SET LOCAL timezone = 'Asia/Kolkata'")
            await conn.execute(
                "INSERT INTO sensors (sensor_id, type) VALUES ('ts-unit-a', 'temperature'), ('ts-unit-b', 'rpm')"
            )
            await conn.executemany(
                "INSERT INTO sensor_readings (timestamp, sensor_id, value) VALUES ($1::text::timestamptz, $2, $3)",
                [
                    ("2026-03-01T10:05:00Z", "ts-unit-a", 1.0),
                    ("2026-03-01T10:55:00Z", "ts-unit-a", 3.0),
                    ("2026-03-01T15:59:59+05:30", "ts-unit-a", 8.0),  # 10:29:59 UTC
                    ("2026-03-01T11:00:00Z", "ts-unit-a", 5.0),
                    ("2026-03-01T11:59:59.999Z", "ts-unit-a", 7.0),
                    ("2026-03-01T10:30:00Z", "ts-unit-b", 100.0),
                ],
            )
            rows = await conn.fetch(
                "SELECT * FROM sensor_readings_hourly WHERE sensor_id LIKE 'ts-unit-%' ORDER BY sensor_id, bucket"
            )
            aggregated = [tuple(r.values()) for r in rows]
        finally:
            await transaction.rollback()
        def hour(h):
            return datetime(2026, 3, 1, h, tzinfo=UTC)
        assert aggregated == [
            (hour(10), "ts-unit-a", 4.0, 1.0, 8.0, 3),
            (hour(11), "ts-unit-a", 6.0, 5.0, 7.0, 2),
            (hour(10), "ts-unit-b", 100.0, 100.0, 100.0, 1),
        ]
    finally:
        await conn.close()
