"""``python -m apps.cli ingest-csv``: the sample CSV through COPY; a re-run inserts nothing; bad lines reported."""

from __future__ import annotations

import csv
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from apps.cli import app
from core.config import PROJECT_ROOT, Settings, to_libpq_url
from core.db.session import create_engine, create_session_factory
from core.ingest.backfill import CSV_COLUMNS, CsvHeaderError, backfill_csv
from tests.integration.conftest import Query

SAMPLE = PROJECT_ROOT / "data" / "sensor_data.csv"


def _sample_copy(tmp_path: Path, prefix: str) -> tuple[Path, int]:
    """The sample with unique sensor ids and timestamps shifted to end an hour ago (stays in retention)."""
    with SAMPLE.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    latest = max(datetime.fromisoformat(r["timestamp"]) for r in rows)
    shift = datetime.now(UTC) - timedelta(hours=1) - latest
    out = tmp_path / "sample.csv"
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        for r in rows:
            ts = datetime.fromisoformat(r["timestamp"]) + shift
            writer.writerow(r | {"sensor_id": f"{prefix}{r['sensor_id']}", "timestamp": ts.isoformat()})
    return out, len(rows)


async def _counts(database_url: str, prefix: str) -> tuple[int, int, set[str]]:
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:
        readings = await conn.fetchval(
            "SELECT count(*) FROM sensor_readings WHERE sensor_id LIKE $1", prefix + "%"
        )
        sensors = await conn.fetch("SELECT type FROM sensors WHERE sensor_id LIKE $1", prefix + "%")
        return readings, len(sensors), {r["type"] for r in sensors}
    finally:
        await conn.close()


async def test_backfill_sample_then_rerun_inserts_nothing(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    prefix = f"csv{uuid.uuid4().hex[:6]}-"
    path, rows = _sample_copy(tmp_path, prefix)
    assert rows > 8_000
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    seen: list[int] = []
    try:
        first = await backfill_csv(
            factory, path, retention_days=settings.retention_days, batch_size=4_000, progress=seen.append
        )
        second = await backfill_csv(factory, path, retention_days=settings.retention_days, batch_size=4_000)
    finally:
        await engine.dispose()
    assert first.rows_read == rows and first.rejected == []
    assert first.inserted + first.duplicates == rows
    assert first.inserted == rows - first.duplicates > 8_000
    assert first.batches == 3 and sum(seen) == rows
    readings, sensors, types = await _counts(database_url, prefix)
    assert readings == first.inserted
    assert sensors == 15 and {"temperature", "vibration", "pressure"} <= types
    assert second.inserted == 0 and second.duplicates == rows and second.rejected == []
    conn = await asyncpg.connect(to_libpq_url(database_url))
    try:  # every batch is history: no-data rules and due dates follow the readings' timestamps
        flags = await conn.fetch(
            "SELECT payload->>'backfill' AS backfill FROM outbox WHERE event_type = 'ReadingsIngested' "
            "AND payload->'sensor_ids' ?| $1::text[]",
            [f"{prefix}{n:03d}" for n in range(1, 16)] + [f"{prefix}sensor-{n:03d}" for n in range(1, 16)],
        )
    finally:
        await conn.close()
    assert len(flags) == first.batches and {r["backfill"] for r in flags} == {"true"}


async def test_bad_header_refused(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b,c\n1,2,3\n")
    engine = create_engine(settings)
    try:
        with pytest.raises(CsvHeaderError):
            await backfill_csv(create_session_factory(engine), path, retention_days=180)
    finally:
        await engine.dispose()


def test_cli_reports_every_invalid_line(settings: Settings, database_url: str, tmp_path: Path) -> None:
    prefix = f"cli{uuid.uuid4().hex[:6]}-"
    now = datetime.now(UTC).replace(microsecond=0)
    good = [
        f"{prefix}a,temperature,{20 + i},°C,{(now - timedelta(minutes=i)).isoformat()},1.0" for i in range(10)
    ]
    bad = [
        f"{prefix}a,temperature,abc,°C,{now.isoformat()},1.0",  # value
        f"{prefix}a,temperature,1,°C,2026-01-01T00:00:00,1.0",  # no timezone
        f"{prefix}a,temperature,1,°C,{(now + timedelta(hours=1)).isoformat()},1.0",  # future
        f"{prefix}a,temperature,1,°C,{now.isoformat()},1.7",  # quality
        f"{prefix}a,temperature,1",  # columns
        f"{prefix}a,temperature,nan,°C,{now.isoformat()},1.0",  # NaN
    ]
    path = tmp_path / "mixed.csv"
    path.write_text(",".join(CSV_COLUMNS) + "\n" + "\n".join(good + bad + [good[0]]) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    env = {"DATABASE_URL": settings.database_url, "SM_ENV": "test"}
    result = CliRunner().invoke(
        app, ["ingest-csv", str(path), "--batch-size", "3", "--rejects", str(rejects)], env=env
    )
    assert result.exit_code == 1, result.output
    assert "rows read: 17" in result.output
    assert (
        "inserted: 10" in result.output
        and "duplicates: 1" in result.output
        and "rejected: 6" in result.output
    )
    for line in range(12, 18):
        assert f"line {line}:" in result.output
    assert len(rejects.read_text().splitlines()) == 7
    again = CliRunner().invoke(app, ["ingest-csv", str(path)], env=env)
    assert "inserted: 0" in again.output and "duplicates: 11" in again.output


def test_cli_purge_idempotency(settings: Settings) -> None:
    result = CliRunner().invoke(app, ["purge-idempotency"], env={"DATABASE_URL": settings.database_url})
    assert result.exit_code == 0, result.output
    assert "purged" in result.output


def _sensor_readings(
    query: Query, database_url: str, sensor_id: str
) -> tuple[str | None, list[tuple[float, Any]]]:
    unit = query(database_url, "SELECT unit FROM sensors WHERE sensor_id = $1", sensor_id)[0]["unit"]
    rows = query(
        database_url,
        "SELECT value, unit FROM sensor_readings WHERE sensor_id = $1 ORDER BY timestamp",
        sensor_id,
    )
    return unit, [(r["value"], r["unit"]) for r in rows]


def test_cli_converts_units_and_rejects_the_lines_that_do_not_convert(
    settings: Settings, database_url: str, tmp_path: Path, query: Query
) -> None:
    prefix = f"unit{uuid.uuid4().hex[:6]}-"
    vib, temp = f"{prefix}vib", f"{prefix}temp"
    query(database_url, "INSERT INTO sensors (sensor_id, type, unit) VALUES ($1, 'vibration', 'mm/s')", vib)
    now = datetime.now(UTC).replace(microsecond=0)
    at = [(now - timedelta(minutes=60 - i)).isoformat() for i in range(10)]
    lines = [
        f"{vib},vibration,1.0,in/s,{at[0]},1.0",  # line 2: converted
        f"{vib},vibration,2.0,mm/s,{at[1]},1.0",
        f"{vib},vibration,3.0,g,{at[2]},1.0",  # line 4: acceleration is not velocity
        f"{temp},temperature,20.0,,{at[3]},1.0",  # line 5: new sensor without a unit → catalogue °C
        f"{temp},temperature,212,°F,{at[4]},1.0",  # line 6: converted
        f"{temp},temperature,1,bar,{at[5]},1.0",  # line 7
        f"{vib},vibration,1,{'x' * 33},{at[6]},1.0",  # line 8: too long
        f"{vib},vibration,4.0,mm/s,{at[2]},1.0",  # line 9: the key of rejected line 4 is free
    ]
    path = tmp_path / "units.csv"
    path.write_text(",".join(CSV_COLUMNS) + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    env = {"DATABASE_URL": settings.database_url, "SM_ENV": "test"}
    result = CliRunner().invoke(app, ["ingest-csv", str(path), "--batch-size", "2"], env=env)
    assert result.exit_code == 1, result.output
    assert "rows read: 8  inserted: 5  duplicates: 0  rejected: 3" in result.output
    assert f"line 4: unit: 'g' cannot be converted to {vib}'s unit 'mm/s'" in result.output
    assert f"line 7: unit: 'bar' cannot be converted to {temp}'s unit '°C'" in result.output
    assert "line 8: unit: longer than 32 characters" in result.output
    assert result.output.index("line 4:") < result.output.index("line 7:") < result.output.index("line 8:")
    unit, rows = _sensor_readings(query, database_url, vib)
    assert unit == "mm/s"
    assert rows == [(pytest.approx(25.4, rel=1e-12), "mm/s"), (2.0, "mm/s"), (4.0, "mm/s")]
    unit, rows = _sensor_readings(query, database_url, temp)
    assert unit == "°C"
    assert rows == [(20.0, None), (pytest.approx(100.0, abs=1e-9), "°C")]
