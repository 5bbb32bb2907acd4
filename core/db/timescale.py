"""SQL of the TimescaleDB layer on ``sensor_readings``, and of its plain-PostgreSQL fallback.

Functions here only *return* SQL text (one statement per string: asyncpg cannot run several statements in one
prepared statement) so migrations run them and unit tests render and assert them. Nothing here imports models.

With TimescaleDB (2.13 or later, for the ``by_range`` form of ``create_hypertable``):
  - ``sensor_readings`` becomes a hypertable on ``timestamp`` with 1-day chunks and
    ``create_default_indexes => false`` (the primary key (timestamp, sensor_id) and the
    (sensor_id, timestamp DESC) index already cover the time column);
  - compression segmented by ``sensor_id``, ordered by ``timestamp DESC``, policy after N days;
  - retention policy after N days;
  - ``sensor_readings_hourly``: a continuous aggregate with real-time aggregation
    (``materialized_only = false``), materialised over all history when it is set up (revision 0006) and kept by
    a refresh policy whose window reaches back as far as ingest accepts late data (``retention_days``), so a
    back-fill anywhere in retention is re-materialised by the next run. Between runs the read path
    (``core/queries/repository.py``) answers the hours with pending invalidations from raw readings.
Compression, continuous aggregates and policies are under the Timescale License (TSL), not Apache 2.0.

Without TimescaleDB the table stays plain and ``sensor_readings_hourly`` is an ordinary view with the same
columns, computed with ``date_bin`` on every query (a live view: always current, but it scans raw readings).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

TABLE = "sensor_readings"
HOURLY_VIEW = "sensor_readings_hourly"
#: Columns of ``sensor_readings_hourly`` on both branches, in order.
HOURLY_COLUMNS = ("bucket", "sensor_id", "avg_value", "min_value", "max_value", "reading_count")

#: True when the timescaledb extension can be used in this database: it is installed already, or it is
#: available and preloaded (CREATE EXTENSION fails unless the library is in shared_preload_libraries).
AVAILABLE_SQL = """\
SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
   AND (EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
        OR current_setting('shared_preload_libraries') ~ 'timescaledb')"""

#: True when the extension is installed in this database.
INSTALLED_SQL = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"


@dataclass(frozen=True)
class TimescaleOptions:
    """Intervals of the TimescaleDB layer; the migration fills days from the settings."""

    compress_after_days: int = 7
    retention_days: int = 180
    chunk_interval: str = "1 day"
    refresh_start_offset: str | None = None
    """How far back each policy run refreshes; default ``retention_days`` (ingest accepts readings that old)."""
    refresh_end_offset: str = "1 hour"
    refresh_schedule_interval: str = "30 minutes"

    def __post_init__(self) -> None:
        if self.compress_after_days < 1 or self.retention_days < 1:
            raise ValueError("compress_after_days and retention_days must be at least 1")
        for value in (
            self.chunk_interval,
            self.refresh_window,
            self.refresh_end_offset,
            self.refresh_schedule_interval,
        ):
            if "'" in value:
                raise ValueError(f"not an interval: {value!r}")

    @property
    def refresh_window(self) -> str:
        """``refresh_start_offset``, else the retention period: late data is accepted that far back."""
        return self.refresh_start_offset or f"{self.retention_days} days"


def interval(value: str | int) -> str:
    """SQL interval literal: ``interval(7)`` → ``INTERVAL '7 days'``, ``interval('1 hour')`` as given."""
    if isinstance(value, int):
        return f"INTERVAL '{value} days'" if value != 1 else "INTERVAL '1 day'"
    if "'" in value:
        raise ValueError(f"not an interval: {value!r}")
    return f"INTERVAL '{value}'"


# --- detection -------------------------------------------------------------------------------------------


def timescaledb_available_sync(conn: Connection) -> bool:
    """Detection for migrations (synchronous connection)."""
    return bool(conn.execute(text(AVAILABLE_SQL)).scalar())


async def timescaledb_available(conn: AsyncConnection) -> bool:
    """Detection for application code (async connection)."""
    return bool((await conn.execute(text(AVAILABLE_SQL))).scalar())


def timescaledb_installed_sync(conn: Connection) -> bool:
    return bool(conn.execute(text(INSTALLED_SQL)).scalar())


def is_hypertable_sql(table: str = TABLE) -> str:
    """Only valid when the extension is installed."""
    return (
        "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables "
        f"WHERE hypertable_schema = current_schema() AND hypertable_name = '{table}')"
    )


# --- TimescaleDB branch: upgrade -------------------------------------------------------------------------


def create_extension_sql() -> str:
    return "CREATE EXTENSION IF NOT EXISTS timescaledb"


def create_hypertable_sql(options: TimescaleOptions = TimescaleOptions()) -> str:
    return (
        f"SELECT create_hypertable('{TABLE}', by_range('timestamp', {interval(options.chunk_interval)}), "
        "create_default_indexes => false, if_not_exists => true, migrate_data => true)"
    )


def enable_compression_sql() -> str:
    """Enable compression once: changing the settings of a hypertable with compressed chunks fails."""
    return f"""\
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM timescaledb_information.hypertables
        WHERE hypertable_schema = current_schema() AND hypertable_name = '{TABLE}' AND compression_enabled
    ) THEN
        ALTER TABLE {TABLE} SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'sensor_id',
            timescaledb.compress_orderby = 'timestamp DESC'
        );
    END IF;
END
$$"""


def compression_policy_sql(options: TimescaleOptions = TimescaleOptions()) -> str:
    return (
        f"SELECT add_compression_policy('{TABLE}', compress_after => {interval(options.compress_after_days)}, "
        "if_not_exists => true)"
    )


def retention_policy_sql(options: TimescaleOptions = TimescaleOptions()) -> str:
    return (
        f"SELECT add_retention_policy('{TABLE}', drop_after => {interval(options.retention_days)}, "
        "if_not_exists => true)"
    )


def drop_plain_hourly_view_sql() -> str:
    """Before creating the continuous aggregate: drop a plain view of the same name (the fallback)."""
    return f"""\
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_views WHERE schemaname = current_schema() AND viewname = '{HOURLY_VIEW}'
    ) AND NOT EXISTS (
        SELECT 1 FROM timescaledb_information.continuous_aggregates
        WHERE view_schema = current_schema() AND view_name = '{HOURLY_VIEW}'
    ) THEN
        DROP VIEW {HOURLY_VIEW};
    END IF;
END
$$"""


def _hourly_select(bucket_expr: str) -> str:
    return f"""\
SELECT {bucket_expr} AS bucket,
       sensor_id,
       avg(value) AS avg_value,
       min(value) AS min_value,
       max(value) AS max_value,
       count(*) AS reading_count
FROM {TABLE}
GROUP BY bucket, sensor_id"""


def hourly_cagg_sql() -> str:
    """Create the continuous aggregate. Cannot run inside a transaction block (use autocommit)."""
    select = _hourly_select("time_bucket(INTERVAL '1 hour', \"timestamp\")")
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {HOURLY_VIEW}\n"
        "WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS\n"
        f"{select}\nWITH NO DATA"
    )


def hourly_cagg_policy_sql(options: TimescaleOptions = TimescaleOptions()) -> str:
    return (
        f"SELECT add_continuous_aggregate_policy('{HOURLY_VIEW}', "
        f"start_offset => {interval(options.refresh_window)}, "
        f"end_offset => {interval(options.refresh_end_offset)}, "
        f"schedule_interval => {interval(options.refresh_schedule_interval)}, "
        "if_not_exists => true)"
    )


def remove_hourly_cagg_policy_sql() -> str:
    return f"SELECT remove_continuous_aggregate_policy('{HOURLY_VIEW}', if_exists => true)"


def refresh_hourly_cagg_sql(options: TimescaleOptions = TimescaleOptions()) -> str:
    """Materialise every bucket up to the policy's end offset, whatever its age. Outside a transaction block."""
    return (
        f"CALL refresh_continuous_aggregate('{HOURLY_VIEW}', NULL, "
        f"now() - {interval(options.refresh_end_offset)})"
    )


def hourly_cagg_exists_sql() -> str:
    """Only valid when the extension is installed."""
    return (
        "SELECT EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates "
        f"WHERE view_schema = current_schema() AND view_name = '{HOURLY_VIEW}')"
    )


#: Invalidations the refresh policy has not processed yet, of the hourly aggregate, in TimescaleDB's internal
#: time (microseconds since the Unix epoch; the extremes stand for -infinity/+infinity), inclusive bounds:
#: the raw hypertable's log (modifications below the invalidation threshold, not yet moved) and the
#: aggregate's own log (ranges never materialised, including everything above the watermark). TimescaleDB
#: catalog tables (2.x): if they ever change shape the query fails and the caller reads raw data instead.
PENDING_INVALIDATIONS_SQL = f"""WITH cagg AS (
    SELECT raw_hypertable_id, mat_hypertable_id FROM _timescaledb_catalog.continuous_agg
    WHERE user_view_schema = current_schema() AND user_view_name = '{HOURLY_VIEW}'
)
SELECT h.lowest_modified_value, h.greatest_modified_value
FROM _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log h JOIN cagg
  ON h.hypertable_id = cagg.raw_hypertable_id
WHERE h.lowest_modified_value < :hi AND h.greatest_modified_value >= :lo
UNION ALL
SELECT m.lowest_modified_value, m.greatest_modified_value
FROM _timescaledb_catalog.continuous_aggs_materialization_invalidation_log m JOIN cagg
  ON m.materialization_id = cagg.mat_hypertable_id
WHERE m.lowest_modified_value < :hi AND m.greatest_modified_value >= :lo"""


def timescale_upgrade_statements(options: TimescaleOptions = TimescaleOptions()) -> list[str]:
    """Statements that run in the migration transaction, before the continuous aggregate."""
    return [
        create_extension_sql(),
        create_hypertable_sql(options),
        enable_compression_sql(),
        compression_policy_sql(options),
        retention_policy_sql(options),
        drop_plain_hourly_view_sql(),
    ]


# --- TimescaleDB branch: downgrade -----------------------------------------------------------------------


def drop_hourly_cagg_sql() -> str:
    """Remove the refresh policy and the continuous aggregate, if they exist."""
    return f"""\
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM timescaledb_information.continuous_aggregates
        WHERE view_schema = current_schema() AND view_name = '{HOURLY_VIEW}'
    ) THEN
        PERFORM remove_continuous_aggregate_policy('{HOURLY_VIEW}', if_exists => true);
        DROP MATERIALIZED VIEW {HOURLY_VIEW};
    END IF;
END
$$"""


def hypertable_to_plain_table_statements() -> list[str]:
    """Replace the ``sensor_readings`` hypertable by a plain table with the same rows, keys and names.

    TimescaleDB has no "un-hypertable" function: rename the hypertable aside, create the plain table like it,
    copy the rows, drop the hypertable, then recreate the primary key, the index and the foreign key with
    the names of revision 0001. Plain SQL, so it can be exercised on any table (tests do, on plain PostgreSQL).
    """
    old = f"{TABLE}_hypertable"
    return [
        f"ALTER TABLE {TABLE} RENAME TO {old}",
        f"ALTER TABLE {old} RENAME CONSTRAINT pk_{TABLE} TO pk_{old}",
        f"ALTER INDEX ix_{TABLE}_sensor_id_timestamp RENAME TO ix_{old}_sensor_id_timestamp",
        (
            f"CREATE TABLE {TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS"
            " INCLUDING STORAGE)"
        ),
        f"INSERT INTO {TABLE} SELECT * FROM {old}",
        f"DROP TABLE {old}",
        f'ALTER TABLE {TABLE} ADD CONSTRAINT pk_{TABLE} PRIMARY KEY ("timestamp", sensor_id)',
        f'CREATE INDEX ix_{TABLE}_sensor_id_timestamp ON {TABLE} (sensor_id, "timestamp" DESC)',
        (
            f"ALTER TABLE {TABLE} ADD CONSTRAINT fk_{TABLE}_sensor_id_sensors FOREIGN KEY (sensor_id) "
            "REFERENCES sensors (sensor_id) ON DELETE CASCADE"
        ),
    ]


def revert_hypertable_sql() -> str:
    """Remove policies, decompress, disable compression and turn the hypertable back into a plain table."""
    body = ";\n        ".join(hypertable_to_plain_table_statements())
    return f"""\
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM timescaledb_information.hypertables
        WHERE hypertable_schema = current_schema() AND hypertable_name = '{TABLE}'
    ) THEN
        PERFORM remove_retention_policy('{TABLE}', if_exists => true);
        PERFORM remove_compression_policy('{TABLE}', if_exists => true);
        PERFORM decompress_chunk(c, if_compressed => true) FROM show_chunks('{TABLE}') AS c;
        IF EXISTS (
            SELECT 1 FROM timescaledb_information.hypertables
            WHERE hypertable_schema = current_schema() AND hypertable_name = '{TABLE}' AND compression_enabled
        ) THEN
            ALTER TABLE {TABLE} SET (timescaledb.compress = false);
        END IF;
        {body};
    END IF;
END
$$"""


def timescale_downgrade_statements() -> list[str]:
    """Reverse of the TimescaleDB branch. The extension itself is left installed (see the migration)."""
    return [drop_hourly_cagg_sql(), revert_hypertable_sql(), drop_plain_hourly_view_sql_if_exists()]


# --- plain PostgreSQL branch -----------------------------------------------------------------------------


def plain_hourly_view_sql() -> str:
    """The same columns as the continuous aggregate, computed live with ``date_bin`` (PostgreSQL 14+).

    The origin is an explicit UTC instant so buckets never depend on the session time zone.
    """
    select = _hourly_select(
        "date_bin(INTERVAL '1 hour', \"timestamp\", TIMESTAMPTZ '2000-01-01 00:00:00+00')"
    )
    return f"CREATE OR REPLACE VIEW {HOURLY_VIEW} AS\n{select}"


def plain_hourly_view_comment_sql() -> str:
    return (
        f"COMMENT ON VIEW {HOURLY_VIEW} IS 'Hourly rollup of {TABLE} (plain PostgreSQL: a live view computed "
        "with date_bin on every query; with TimescaleDB it is a continuous aggregate)'"
    )


def plain_upgrade_statements() -> list[str]:
    return [plain_hourly_view_sql(), plain_hourly_view_comment_sql()]


def drop_plain_hourly_view_sql_if_exists() -> str:
    """Drop the plain view (on the TimescaleDB branch the continuous aggregate is dropped before)."""
    return f"DROP VIEW IF EXISTS {HOURLY_VIEW}"


def plain_downgrade_statements() -> list[str]:
    return [drop_plain_hourly_view_sql_if_exists()]
