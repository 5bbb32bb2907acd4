"""Migration 0003 (alerting): tables, default rules, constraints, up/down/idempotent re-runs."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from alembic import command

from core.config import to_libpq_url
from tests.support.db import alembic_config, downgrade, upgrade

TABLES = {"alert_rules", "alert_events", "alert_observations", "maintenance_windows"}


async def _run(url: str, statements: list[str], fetch: str | None) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(to_libpq_url(url), timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
        return await conn.fetch(fetch) if fetch else []
    finally:
        await conn.close()


def run(url: str, *statements: str, fetch: str | None = None) -> list[asyncpg.Record]:
    return asyncio.run(_run(url, list(statements), fetch))


def tables(url: str) -> set[str]:
    return {
        r["tablename"] for r in run(url, fetch="SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }


def rules(url: str) -> dict[str, dict[str, object]]:
    rows = run(url, fetch="SELECT name, kind, sensor_type, params, severity, open_after_k FROM alert_rules")
    return {r["name"]: {**dict(r), "params": json.loads(r["params"])} for r in rows}


def test_upgrade_creates_the_tables_and_seeds_default_rules(migrated_database_url):
    url = migrated_database_url
    assert tables(url) >= TABLES
    seeded = rules(url)
    assert seeded["temperature-high"]["params"] == {"max": 85.0}
    assert seeded["temperature-high"]["severity"] == "high"
    assert seeded["vibration-iso10816-zone-d"]["params"] == {"max": 7.1}
    assert seeded["vibration-iso10816-zone-d"]["severity"] == "critical"
    assert seeded["pressure-range"]["params"] == {"min": 2.0, "max": 10.0}
    assert seeded["humidity-high"]["params"] == {"max": 90.0}
    assert seeded["voltage-range"]["params"] == {"min": 207.0, "max": 253.0}
    assert (
        seeded["anomaly-score"]["kind"] == "anomaly_score" and seeded["anomaly-score"]["sensor_type"] is None
    )
    assert seeded["no-data"]["kind"] == "no_data"


def test_constraints(migrated_database_url):
    url = migrated_database_url
    run(url, "INSERT INTO sensors (sensor_id, type) VALUES ('s1', 'temperature')")
    with pytest.raises(asyncpg.CheckViolationError):
        run(
            url,
            "INSERT INTO alert_rules (name, kind, sensor_type, sensor_id) VALUES ('x', 'threshold', 't', 's1')",
        )
    with pytest.raises(asyncpg.CheckViolationError):
        run(url, "INSERT INTO alert_rules (name, kind) VALUES ('x', 'magic')")
    with pytest.raises(asyncpg.CheckViolationError):
        run(url, "INSERT INTO alert_rules (name, kind, open_after_k) VALUES ('x', 'threshold', 0)")
    with pytest.raises(asyncpg.UniqueViolationError):
        run(url, "INSERT INTO alert_rules (name, kind) VALUES ('temperature-high', 'threshold')")
    run(url, "INSERT INTO assets (name) VALUES ('a1')")
    with pytest.raises(asyncpg.CheckViolationError):
        run(
            url,
            "INSERT INTO maintenance_windows (asset_id, starts_at, ends_at) "
            "SELECT id, now(), now() - interval '1 hour' FROM assets",
        )
    # observations: one per (alert, timestamp); deleting the sensor removes its alerts, events and observations
    run(
        url,
        "INSERT INTO alert_rules (name, kind, sensor_id) VALUES ('only-s1', 'no_data', 's1')",
        "INSERT INTO alerts (sensor_id, rule, severity) VALUES ('s1', 'r', 'high')",
        "INSERT INTO alert_events (alert_id, to_status, actor) SELECT id, 'open', 'alerting' FROM alerts",
        "INSERT INTO alert_observations (alert_id, observed_at) SELECT id, '2026-01-01' FROM alerts",
    )
    with pytest.raises(asyncpg.UniqueViolationError):
        run(url, "INSERT INTO alert_observations (alert_id, observed_at) SELECT id, '2026-01-01' FROM alerts")
    run(url, "DELETE FROM sensors WHERE sensor_id = 's1'")
    counts = run(
        url,
        fetch="SELECT (SELECT count(*) FROM alert_events) AS e, (SELECT count(*) FROM alert_observations) AS o, "
        "(SELECT count(*) FROM alert_rules WHERE name = 'only-s1') AS r",
    )[0]
    assert (counts["e"], counts["o"], counts["r"]) == (0, 0, 0)


def test_downgrade_to_0002_and_up_again(migrated_database_url, snapshot):
    url = migrated_database_url
    first = snapshot(url)
    run(
        url,
        "INSERT INTO sensors (sensor_id, type) VALUES ('s1', 'temperature')",
        "INSERT INTO alerts (sensor_id, rule, severity) VALUES ('s1', 'r', 'high')",
    )
    downgrade(url, "0002")
    assert not TABLES & tables(url)
    assert run(url, fetch="SELECT count(*) AS n FROM alerts")[0]["n"] == 1  # 0002's tables keep their rows
    upgrade(url)
    assert snapshot(url) == first
    assert len(rules(url)) == 10  # 0003's 7 and the 3 of 0005


def test_rerunning_0003_keeps_changed_rules_and_adds_no_duplicates(migrated_database_url, snapshot):
    url = migrated_database_url
    run(
        url,
        "UPDATE alert_rules SET params = '{\"max\": 80}' WHERE name = 'temperature-high'",
        "DELETE FROM alert_rules WHERE name = 'humidity-high'",
    )
    before = snapshot(url)
    command.stamp(alembic_config(url), "0002")
    upgrade(url)  # the body of 0003 over existing tables
    assert snapshot(url) == before
    seeded = rules(url)
    assert seeded["temperature-high"]["params"] == {"max": 80}
    assert "humidity-high" in seeded  # a default removed by hand comes back only with a re-run
    assert len(seeded) == 10
    # downgrade over tables that are already gone succeeds
    downgrade(url, "0002")
    command.stamp(alembic_config(url), "0003")
    downgrade(url, "0002")
    assert not TABLES & tables(url)
