"""Alembic migrations on real databases: schema, constraints, idempotency, round trips, models agree.

On the test server (PostgreSQL 15 for `make test`, the embedded PostgreSQL 18 for `make test-pg18`: plain branch,
no TimescaleDB there; tests marked plain_postgres are skipped where it is) and on a fresh embedded PostgreSQL 18
(slow).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint as SACheck
from sqlalchemy import DateTime, ForeignKeyConstraint, PrimaryKeyConstraint, UniqueConstraint
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from core.config import to_async_url, to_libpq_url
from core.db import timescale
from core.models import Base  # every table registered (core.models imports each domain's models)
from tests.support.db import alembic_config, downgrade, upgrade

METADATA_TABLES = set(Base.metadata.tables)
HEAD = "0007"
CONTYPE = {PrimaryKeyConstraint: "p", UniqueConstraint: "u", SACheck: "c", ForeignKeyConstraint: "f"}
ON_DELETE = {None: "a", "CASCADE": "c", "SET NULL": "n", "RESTRICT": "r"}

#: Differences between the models and the migrated database that are accepted, with the reason.
#: The hourly rollup is a view (plain branch) or a continuous aggregate (TimescaleDB), not a table, so the
#: comparison (which reflects tables only) never reports it; nothing else is expected to differ.
ACCEPTED_DIFFERENCES: dict[tuple[str, str], str] = {}


async def _run(url: str, statements: list[str], fetch: str | None = None) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(to_libpq_url(url), timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
        return await conn.fetch(fetch) if fetch else []
    finally:
        await conn.close()


def run(url: str, *statements: str, fetch: str | None = None) -> list[asyncpg.Record]:
    return asyncio.run(_run(url, list(statements), fetch))


def expect_error(url: str, error: type[Exception], *statements: str) -> None:
    with pytest.raises(error):
        run(url, *statements)


def model_differences(url: str) -> list[Any]:
    async def compare() -> list[Any]:
        engine = create_async_engine(to_async_url(url), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync_conn: compare_metadata(
                        MigrationContext.configure(
                            sync_conn, opts={"compare_type": True, "compare_server_default": True}
                        ),
                        Base.metadata,
                    )
                )
        finally:
            await engine.dispose()

    diffs = asyncio.run(compare())
    return [d for d in diffs if not (isinstance(d, tuple) and (d[0], _diff_name(d)) in ACCEPTED_DIFFERENCES)]


def _diff_name(diff: tuple[Any, ...]) -> str:
    obj = diff[1] if len(diff) > 1 else None
    return str(getattr(obj, "name", obj))


def public_tables(url: str, query: Any) -> set[str]:
    rows = query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


# --- upgrade from empty ------------------------------------------------------------------------------------


def test_upgrade_creates_every_table_with_keys_constraints_and_indexes(migrated_database_url, query):
    url = migrated_database_url
    assert public_tables(url, query) == METADATA_TABLES | {"alembic_version"}
    assert query(url, "SELECT version_num FROM alembic_version")[0]["version_num"] == HEAD

    # PostgreSQL 18 also lists every NOT NULL column as a constraint (contype 'n', named <table>_<column>_not_null);
    # 15 does not. Nullability is checked per column below (information_schema) on both.
    constraints = query(
        url,
        "SELECT conrelid::regclass::text AS t, conname, contype::text, confdeltype::text FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace AND contype <> 'n'",
    )
    indexes = query(url, "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
    columns = query(
        url,
        "SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = 'public'",
    )
    by_column = {(c["table_name"], c["column_name"]): c for c in columns}

    for table in Base.metadata.sorted_tables:
        actual = {c["conname"]: c for c in constraints if c["t"] == table.name}
        expected = {c.name: CONTYPE[type(c)] for c in table.constraints}
        assert {name: c["contype"] for name, c in actual.items()} == expected, table.name
        for fk in table.foreign_key_constraints:
            assert actual[fk.name]["confdeltype"] == ON_DELETE[fk.ondelete], fk.name

        expected_indexes = {i.name for i in table.indexes} | {
            c.name for c in table.constraints if isinstance(c, PrimaryKeyConstraint | UniqueConstraint)
        }
        assert {i["indexname"] for i in indexes if i["tablename"] == table.name} == expected_indexes

        pk_columns = query(
            url,
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
            "WHERE i.indrelid = $1::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey::int2[], a.attnum)",
            table.name,
        )
        assert [r["attname"] for r in pk_columns] == [c.name for c in table.primary_key.columns]

        for column in table.columns:
            info = by_column[(table.name, column.name)]
            assert (info["is_nullable"] == "YES") == column.nullable, (table.name, column.name)
            if isinstance(column.type, DateTime):
                assert info["data_type"] == "timestamp with time zone", (table.name, column.name)
    assert not [c for c in columns if c["data_type"] == "timestamp without time zone"]

    # The key facts of DESIGN.md §4, spelled out.
    index_defs = {i["indexname"]: i["indexdef"] for i in indexes}
    assert [c.name for c in Base.metadata.tables["sensor_readings"].primary_key.columns] == [
        "timestamp",
        "sensor_id",
    ]
    assert 'USING btree (sensor_id, "timestamp" DESC)' in index_defs["ix_sensor_readings_sensor_id_timestamp"]
    for name in ("value", "quality"):
        assert by_column[("sensor_readings", name)]["data_type"] == "double precision"
    assert by_column[("sensor_readings", "ingested_at")]["column_default"] == "now()"
    assert index_defs["uq_alerts_sensor_id_rule_unresolved"].startswith("CREATE UNIQUE INDEX")
    assert (
        "WHERE (status = ANY (ARRAY['open'::text, 'acknowledged'::text]))"
        in index_defs["uq_alerts_sensor_id_rule_unresolved"]
    )
    assert "WHERE (published_at IS NULL)" in index_defs["ix_outbox_unpublished"]
    assert "(expires_at)" in index_defs["ix_idempotency_keys_expires_at"]
    assert by_column[("api_keys", "scopes")]["udt_name"] == "_text"
    assert by_column[("outbox", "payload")]["data_type"] == "jsonb"
    assert by_column[("idempotency_keys", "response")]["data_type"] == "jsonb"
    views = query(url, "SELECT viewname FROM pg_views WHERE schemaname = 'public'")
    assert [v["viewname"] for v in views] == [timescale.HOURLY_VIEW]


def test_one_unresolved_alert_per_sensor_and_rule(migrated_database_url):
    url = migrated_database_url
    insert = "INSERT INTO alerts (sensor_id, rule, severity) VALUES ('{s}', '{r}', 'high')"
    run(
        url,
        "INSERT INTO sensors (sensor_id, type) VALUES ('s1', 'temperature'), ('s2', 'vibration')",
        insert.format(s="s1", r="zscore"),
    )
    expect_error(url, asyncpg.UniqueViolationError, insert.format(s="s1", r="zscore"))
    # acknowledged is still unresolved
    run(url, "UPDATE alerts SET status = 'acknowledged', acknowledged_at = now() WHERE sensor_id = 's1'")
    expect_error(url, asyncpg.UniqueViolationError, insert.format(s="s1", r="zscore"))
    # other rule, other sensor: allowed
    run(url, insert.format(s="s1", r="threshold"), insert.format(s="s2", r="zscore"))
    # the alerting agent's upsert targets the partial index
    rows = run(
        url,
        fetch="INSERT INTO alerts (sensor_id, rule, severity) VALUES ('s1', 'zscore', 'high') "
        "ON CONFLICT (sensor_id, rule) WHERE status IN ('open', 'acknowledged') "
        "DO UPDATE SET anomaly_count = alerts.anomaly_count + 1 RETURNING anomaly_count",
    )
    assert rows[0]["anomaly_count"] == 2
    # once resolved, a new alert may open; resolved alerts accumulate
    run(
        url,
        "UPDATE alerts SET status = 'resolved', resolved_at = now() WHERE sensor_id = 's1' AND rule = 'zscore'",
    )
    run(url, insert.format(s="s1", r="zscore"))
    run(
        url,
        "UPDATE alerts SET status = 'resolved', resolved_at = now() WHERE sensor_id = 's1' AND rule = 'zscore'",
    )
    run(url, insert.format(s="s1", r="zscore"))
    counts = run(
        url,
        fetch="SELECT status, count(*) AS n FROM alerts WHERE sensor_id = 's1' AND rule = 'zscore' GROUP BY 1",
    )
    assert {r["status"]: r["n"] for r in counts} == {"open": 1, "resolved": 2}
    # status and its timestamps are checked
    expect_error(url, asyncpg.CheckViolationError, "UPDATE alerts SET status = 'closed'")
    expect_error(
        url, asyncpg.CheckViolationError, "UPDATE alerts SET status = 'resolved' WHERE resolved_at IS NULL"
    )
    expect_error(
        url,
        asyncpg.CheckViolationError,
        "INSERT INTO alerts (sensor_id, rule, severity) VALUES ('s2', 'x', 'urgent')",
    )


def test_maintenance_logs_reference_tasks(migrated_database_url):
    url = migrated_database_url
    expect_error(
        url,
        asyncpg.ForeignKeyViolationError,
        "INSERT INTO maintenance_logs (task_id, outcome) VALUES (424242, 'fault_confirmed')",
    )
    run(
        url,
        "INSERT INTO assets (name) VALUES ('pump-1')",
        "INSERT INTO sensors (sensor_id, asset_id, type) SELECT 's1', id, 'temperature' FROM assets",
        "INSERT INTO alerts (sensor_id, rule, severity) VALUES ('s1', 'zscore', 'critical')",
        "INSERT INTO maintenance_tasks (asset_id, sensor_id, alert_id, title) "
        "SELECT a.id, 's1', al.id, 'inspect bearing' FROM assets a, alerts al",
        "INSERT INTO maintenance_logs (task_id, outcome, technician) "
        "SELECT id, 'fault_confirmed', 'kim' FROM maintenance_tasks",
    )
    task = run(url, fetch="SELECT status, priority FROM maintenance_tasks")[0]
    assert (task["status"], task["priority"]) == ("open", "medium")
    expect_error(
        url,
        asyncpg.CheckViolationError,
        "INSERT INTO maintenance_logs (task_id, outcome) SELECT id, 'maybe' FROM maintenance_tasks",
    )
    expect_error(url, asyncpg.CheckViolationError, "UPDATE maintenance_tasks SET status = 'closed'")
    # one task per alert
    expect_error(
        url,
        asyncpg.UniqueViolationError,
        "INSERT INTO maintenance_tasks (alert_id, title) SELECT id, 'again' FROM alerts",
    )
    # deleting the alert keeps the work order; deleting the task removes its logs
    run(url, "DELETE FROM alerts")
    assert run(url, fetch="SELECT alert_id FROM maintenance_tasks")[0]["alert_id"] is None
    run(url, "DELETE FROM maintenance_tasks")
    assert run(url, fetch="SELECT count(*) AS n FROM maintenance_logs")[0]["n"] == 0


def test_sensor_deletion_cascades_to_time_series(migrated_database_url):
    url = migrated_database_url
    run(
        url,
        "INSERT INTO sensors (sensor_id, type) VALUES ('s1', 'temperature')",
        "INSERT INTO sensor_readings (timestamp, sensor_id, value) VALUES ('2026-01-01T00:00:00Z', 's1', 1.5)",
        "INSERT INTO anomalies (sensor_id, timestamp, value, score, method) "
        "VALUES ('s1', '2026-01-01T00:00:00Z', 1.5, 4.2, 'zscore')",
        "INSERT INTO injected_faults (sensor_id, kind, started_at) VALUES ('s1', 'spike', now())",
    )
    expect_error(
        url,
        asyncpg.UniqueViolationError,
        "INSERT INTO sensor_readings (timestamp, sensor_id, value) VALUES ('2026-01-01T00:00:00Z', 's1', 2)",
    )
    expect_error(
        url,
        asyncpg.ForeignKeyViolationError,
        "INSERT INTO sensor_readings (timestamp, sensor_id, value) VALUES (now(), 'unknown', 2)",
    )
    run(url, "DELETE FROM sensors")
    for table in ("sensor_readings", "anomalies", "injected_faults"):
        assert run(url, fetch=f"SELECT count(*) AS n FROM {table}")[0]["n"] == 0


# --- downgrade, round trip, idempotency ------------------------------------------------------------------


def test_downgrade_to_base_leaves_only_alembic_version(migrated_database_url, query):
    url = migrated_database_url
    downgrade(url, "base")
    assert public_tables(url, query) == {"alembic_version"}
    assert query(url, "SELECT * FROM alembic_version") == []
    assert query(url, "SELECT viewname FROM pg_views WHERE schemaname = 'public'") == []
    sequences = query(url, "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
    assert sequences == []
    downgrade(url, "base")  # already at base: a no-op


def test_upgrade_downgrade_upgrade_round_trip(migrated_database_url, snapshot):
    url = migrated_database_url
    first = snapshot(url)
    downgrade(url, "0001")
    assert list(snapshot(url)["views"]) == []
    upgrade(url)
    assert snapshot(url) == first
    downgrade(url, "base")
    upgrade(url)
    assert snapshot(url) == first


def test_upgrade_head_twice_is_a_no_op(migrated_database_url, snapshot):
    url = migrated_database_url
    before = snapshot(url)
    upgrade(url)
    assert snapshot(url) == before


def test_migrations_are_safe_over_existing_and_missing_objects(migrated_database_url, snapshot, query):
    """Re-running every migration body over an existing schema (stamp base + upgrade) changes nothing;
    re-running every downgrade over a schema that is already gone (stamp head + downgrade) succeeds."""
    url = migrated_database_url
    before = snapshot(url)
    command.stamp(alembic_config(url), "base", purge=True)
    upgrade(url)
    assert snapshot(url) == before
    downgrade(url, "base")
    command.stamp(alembic_config(url), "head")
    downgrade(url, "base")
    assert public_tables(url, query) == {"alembic_version"}


def test_models_and_migrations_agree(migrated_database_url):
    url = migrated_database_url
    assert model_differences(url) == []
    command.check(alembic_config(url))  # the env.py configuration (compare_type, server defaults) agrees too


@pytest.mark.plain_postgres  # on TimescaleDB the table is a hypertable and the view a continuous aggregate
def test_hypertable_revert_statements_rebuild_the_plain_table(migrated_database_url, snapshot):
    """The SQL that turns the hypertable back into a plain table (TimescaleDB downgrade) is plain SQL:
    on a plain table it must give back the same table, rows, keys and names."""
    url = migrated_database_url
    run(
        url,
        "INSERT INTO sensors (sensor_id, type) VALUES ('s1', 'temperature')",
        "INSERT INTO sensor_readings (timestamp, sensor_id, value, unit, quality) "
        "SELECT t, 's1', extract(epoch FROM t), 'C', 1 "
        "FROM generate_series('2026-01-01'::timestamptz, '2026-01-02', '1 hour') AS t",
    )
    view = timescale.HOURLY_VIEW
    before = snapshot(url)
    rows_before = run(url, fetch="SELECT * FROM sensor_readings ORDER BY 1")
    run(
        url,
        "BEGIN",
        f"DROP VIEW {view}",
        *timescale.hypertable_to_plain_table_statements(),
        *timescale.plain_upgrade_statements(),
        "COMMIT",
    )
    assert snapshot(url) == before
    assert run(url, fetch="SELECT * FROM sensor_readings ORDER BY 1") == rows_before
    assert model_differences(url) == []


async def test_migrations_run_from_inside_an_event_loop(migrated_database_url):
    """env.py runs its own event loop in a worker thread when the caller already has one running."""
    downgrade(migrated_database_url, "0001")
    upgrade(migrated_database_url)
    conn = await asyncpg.connect(to_libpq_url(migrated_database_url))
    try:
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == HEAD
    finally:
        await conn.close()


# --- embedded PostgreSQL 18 ------------------------------------------------------------------------------


@pytest.mark.slow
def test_upgrade_and_downgrade_on_embedded_postgresql_18(embedded_pg18_url, query, snapshot):
    url = embedded_pg18_url  # postgresql://postgres:@/postgres?host=<socket dir>
    assert "host=" in url
    assert int(query(url, "SHOW server_version_num")[0][0]) >= 180000
    upgrade(url)
    first = snapshot(url)
    assert public_tables(url, query) == METADATA_TABLES | {"alembic_version"}
    assert [v[0] for v in first["views"]] == [timescale.HOURLY_VIEW]
    assert model_differences(url) == []
    upgrade(url)
    assert snapshot(url) == first
    downgrade(url, "base")
    assert public_tables(url, query) == {"alembic_version"}
    upgrade(url)
    assert snapshot(url) == first
