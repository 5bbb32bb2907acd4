"""Seeding the demo fleet into the migrated test database, re-runs, top-up and the CSV export.

The tests of this module run in order on one database state: seed → re-run → export → top-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.config import load_settings
from core.db.session import create_engine, create_session_factory, unit_of_work
from core.readings.repository import ReadingRepository
from core.simulation import DEMO_SENSOR_IDS, generate_demo_fleet
from core.simulation.export import READINGS_HEADER, export_from_generator
from core.simulation.seed import CLIPPED_NOTE, seed_demo_fleet
from scripts import export_sensor_data_csv, seed_data

END = datetime(2026, 11, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
FLEET = generate_demo_fleet(END, seed=42)
GENERATED = len(FLEET.readings)  # 15 sensors x 600 readings (the dropout sensor starts earlier)
DEMO = {"ids": list(DEMO_SENSOR_IDS)}


@pytest.fixture(scope="module")
async def seed_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(load_settings(env="test", database_url=database_url, db_pool_size=2))
    # Start from a clean slate for the demo sensors (other modules share this database).
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM injected_faults WHERE sensor_id = ANY(:ids)"), DEMO)
        await conn.execute(text("DELETE FROM sensor_readings WHERE sensor_id = ANY(:ids)"), DEMO)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
def sessions(seed_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(seed_engine)


async def _scalar(sessions: async_sessionmaker[AsyncSession], sql: str) -> object:
    async with unit_of_work(sessions) as session:
        return await session.scalar(text(sql), DEMO)


async def _fault_rows(sessions: async_sessionmaker[AsyncSession]) -> list[tuple]:
    async with unit_of_work(sessions) as session:
        rows = await session.execute(
            text(
                "SELECT id, sensor_id, kind, started_at, ended_at, magnitude, description FROM injected_faults "
                "WHERE sensor_id = ANY(:ids) ORDER BY sensor_id, started_at, kind"
            ),
            DEMO,
        )
        return [tuple(row) for row in rows]


async def _row_versions(sessions: async_sessionmaker[AsyncSession]) -> list[tuple]:
    async with unit_of_work(sessions) as session:
        rows = await session.execute(
            text(
                "SELECT 's:' || sensor_id, xmin::text FROM sensors WHERE sensor_id = ANY(:ids) "
                "UNION ALL SELECT 'a:' || name, xmin::text FROM assets "
                "WHERE name IN ('P-101', 'C-201', 'M-301', 'P-102', 'C-202') ORDER BY 1"
            ),
            DEMO,
        )
        return [tuple(row) for row in rows]


async def test_seed_stores_sensors_readings_and_faults(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with unit_of_work(sessions) as session:
        report = await seed_demo_fleet(session, end=END, seed=42)
    assert not report.skipped
    assert report.readings_inserted == report.readings_generated == GENERATED == 9000
    assert report.faults_recorded == len(FLEET.faults) >= 6
    assert (report.assets, report.sensors, report.sensor_types) == (5, 15, 5)

    async with unit_of_work(sessions) as session:
        counts = await ReadingRepository(session).count_by_sensor(DEMO_SENSOR_IDS)
    assert counts == dict.fromkeys(DEMO_SENSOR_IDS, 600)
    assert sum(counts.values()) == GENERATED
    assert await _scalar(sessions, "SELECT count(*) FROM sensors WHERE sensor_id = ANY(:ids)") == 15
    assert (
        await _scalar(sessions, "SELECT count(DISTINCT type) FROM sensors WHERE sensor_id = ANY(:ids)") == 5
    )
    assert (
        await _scalar(
            sessions,
            "SELECT count(DISTINCT a.id) FROM sensors s JOIN assets a ON a.id = s.asset_id "
            "WHERE s.sensor_id = ANY(:ids)",
        )
        == 5
    )
    window = await _scalar(
        sessions,
        "SELECT min(timestamp)::text || ' ' || max(timestamp)::text FROM sensor_readings WHERE sensor_id = ANY(:ids)",
    )
    assert window == "2026-10-29 19:05:00+00 2026-11-01 00:00:00+00"  # sensor-011 starts 36 slots early
    dropout = next(f for f in FLEET.faults if f.kind == "dropout")
    in_gap = await _scalar(
        sessions,
        f"SELECT count(*) FROM sensor_readings WHERE sensor_id = '{dropout.sensor_id}' "
        f"AND timestamp BETWEEN '{dropout.started_at.isoformat()}' AND '{dropout.ended_at.isoformat()}'",
    )
    assert in_gap == 0 and dropout.magnitude == 36

    stored = [row[1:] for row in await _fault_rows(sessions)]
    expected = [
        (f.sensor_id, f.kind, f.started_at, f.ended_at, f.magnitude, f.description) for f in FLEET.faults
    ]
    assert stored == expected


async def test_rerun_is_a_no_op(sessions: async_sessionmaker[AsyncSession]) -> None:
    faults_before = await _fault_rows(sessions)
    versions_before = await _row_versions(sessions)

    async with unit_of_work(sessions) as session:
        skipped = await seed_demo_fleet(session, end=END, seed=42)
    assert skipped.skipped and skipped.readings_inserted == 0
    assert "skipped" in str(skipped)

    async with unit_of_work(sessions) as session:
        forced = await seed_demo_fleet(session, end=END, seed=42, force=True)
    assert not forced.skipped
    assert (forced.readings_inserted, forced.faults_recorded, forced.sensors_created) == (0, 0, 0)

    assert (
        await _scalar(sessions, "SELECT count(*) FROM sensor_readings WHERE sensor_id = ANY(:ids)")
        == GENERATED
    )
    assert await _fault_rows(sessions) == faults_before
    assert await _row_versions(sessions) == versions_before  # assets and sensors were not even rewritten


def test_export_from_the_database_matches_the_generator(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SM_ENV", "test")
    out = tmp_path / "db" / "sensor_data.csv"
    assert export_sensor_data_csv.main(["--output", str(out)]) == 0

    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "sensor_id,sensor_type,value,unit,timestamp,quality"
    assert lines[0] == ",".join(READINGS_HEADER)
    demo_lines = [line for line in lines[1:] if line.split(",", 1)[0] in DEMO_SENSOR_IDS]
    assert len(demo_lines) == GENERATED
    assert demo_lines[0] == next(line for line in lines[1:] if line.startswith("sensor-001,"))

    generated = tmp_path / "gen" / "sensor_data.csv"
    export_from_generator(generated, end=END, seed=42)
    assert demo_lines == generated.read_text(encoding="utf-8").splitlines()[1:]

    faults = (tmp_path / "db" / "sensor_data_faults.csv").read_text(encoding="utf-8").splitlines()
    generated_faults = (tmp_path / "gen" / "sensor_data_faults.csv").read_text(encoding="utf-8").splitlines()
    assert [line for line in faults if line.split(",", 1)[0] in DEMO_SENSOR_IDS] == generated_faults[1:]


def test_seed_script_runs_in_its_own_unit_of_work(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SM_ENV", "test")
    assert seed_data.main(["--end", "2026-11-01T00:00:00Z", "--seed", "42"]) == 0
    assert "skipped" in capsys.readouterr().out


async def test_forced_seed_with_a_later_end_tops_up(sessions: async_sessionmaker[AsyncSession]) -> None:
    later = END + 12 * STEP
    async with unit_of_work(sessions) as session:
        report = await seed_demo_fleet(session, end=later, seed=42, force=True)
    assert report.readings_inserted == 15 * 12
    assert await _scalar(sessions, "SELECT count(*) FROM sensor_readings WHERE sensor_id = ANY(:ids)") == (
        GENERATED + 15 * 12
    )
    assert (
        await _scalar(
            sessions,
            "SELECT count(*) FROM (SELECT 1 FROM sensor_readings WHERE sensor_id = ANY(:ids) "
            "GROUP BY sensor_id, timestamp HAVING count(*) > 1) d",
        )
        == 0
    )
    # Old records are kept; only faults reaching into the new readings are added, clipped to them.
    rows = await _fault_rows(sessions)
    assert len(rows) == len(FLEET.faults) + report.faults_recorded
    added = [row for row in rows if row[6].endswith(CLIPPED_NOTE)]
    assert len(added) == report.faults_recorded == 1
    assert added[0][1:5] == ("sensor-001", "drift", END + STEP, later)
