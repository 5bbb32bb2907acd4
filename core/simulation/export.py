"""CSV export of readings (``data/sensor_data.csv``) and fault ground truth (``data/sensor_data_faults.csv``).

Both files are UTF-8, comma-separated, ``\\n`` line ends, with a header row; timestamps are ISO 8601 UTC with a
``Z`` suffix; numbers are written in their shortest exact form; an empty field is NULL. Readings are sorted by
sensor then time, faults by sensor, start and kind. The same rows come out whether they are read back from the
database or taken straight from the generator (the database stores exactly what the generator produced).
Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import os
from collections.abc import AsyncIterable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from sqlalchemy.ext.asyncio import AsyncSession

from core.config import PROJECT_ROOT
from core.readings.repository import ReadingRepository
from core.simulation.generator import (
    DEFAULT_INTERVAL,
    DEFAULT_READINGS_PER_SENSOR,
    DEFAULT_SEED,
    generate_demo_fleet,
)
from core.simulation.repository import FaultLike, FaultRepository

READINGS_HEADER: tuple[str, ...] = ("sensor_id", "sensor_type", "value", "unit", "timestamp", "quality")
FAULTS_HEADER: tuple[str, ...] = ("sensor_id", "kind", "started_at", "ended_at", "magnitude", "description")
DEFAULT_READINGS_PATH = PROJECT_ROOT / "data" / "sensor_data.csv"


def faults_path_for(readings_path: Path) -> Path:
    """``sensor_data.csv`` → ``sensor_data_faults.csv`` (written alongside)."""
    return readings_path.with_name(readings_path.stem + "_faults" + readings_path.suffix)


def iso_utc(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _reading_fields(row: Sequence[Any]) -> list[str]:
    sensor_id, sensor_type, value, unit, timestamp, quality = row
    return [sensor_id, sensor_type, _number(value), unit or "", iso_utc(timestamp), _number(quality)]


def _fault_fields(fault: FaultLike) -> list[str]:
    return [
        fault.sensor_id,
        fault.kind,
        iso_utc(fault.started_at),
        iso_utc(fault.ended_at),
        _number(fault.magnitude),
        fault.description or "",
    ]


class _AtomicCsv:
    """A csv writer on ``path.tmp`` that replaces ``path`` on success and disappears on error."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._header = header
        self.rows = 0

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self._tmp.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(self._header)
        return self

    def write(self, fields: list[str]) -> None:
        self._writer.writerow(fields)
        self.rows += 1

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._file.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def write_readings_csv(rows: Iterable[Sequence[Any]], path: Path) -> int:
    """Write ``(sensor_id, sensor_type, value, unit, timestamp, quality)`` rows; returns the row count."""
    with _AtomicCsv(path, READINGS_HEADER) as out:
        for row in rows:
            out.write(_reading_fields(row))
    return out.rows


async def write_readings_csv_async(rows: AsyncIterable[Sequence[Any]], path: Path) -> int:
    with _AtomicCsv(path, READINGS_HEADER) as out:
        async for row in rows:
            out.write(_reading_fields(row))
    return out.rows


def write_faults_csv(faults: Iterable[FaultLike], path: Path) -> int:
    with _AtomicCsv(path, FAULTS_HEADER) as out:
        for fault in faults:
            out.write(_fault_fields(fault))
    return out.rows


def export_from_generator(
    readings_path: Path = DEFAULT_READINGS_PATH,
    faults_path: Path | None = None,
    *,
    end: datetime | None = None,
    seed: int = DEFAULT_SEED,
    readings_per_sensor: int = DEFAULT_READINGS_PER_SENSOR,
    interval: timedelta = DEFAULT_INTERVAL,
) -> tuple[int, int]:
    """Write both files straight from the generator (no database); returns ``(readings, faults)``."""
    fleet = generate_demo_fleet(end, seed=seed, readings_per_sensor=readings_per_sensor, interval=interval)
    frame = fleet.readings
    rows = zip(
        frame["sensor_id"].tolist(),
        frame["sensor_type"].tolist(),
        frame["value"].tolist(),
        frame["unit"].tolist(),
        (ts.to_pydatetime() for ts in frame["timestamp"]),
        frame["quality"].tolist(),
        strict=True,
    )
    n_readings = write_readings_csv(rows, readings_path)
    n_faults = write_faults_csv(fleet.faults, faults_path or faults_path_for(readings_path))
    return n_readings, n_faults


async def export_from_database(
    session: AsyncSession,
    readings_path: Path = DEFAULT_READINGS_PATH,
    faults_path: Path | None = None,
    *,
    sensor_ids: Sequence[str] | None = None,
) -> tuple[int, int]:
    """Stream readings (and fault records) from the database into both files; returns ``(readings, faults)``.

    Runs inside the caller's unit of work (the readings are read through a server-side cursor).
    """
    n_readings = await write_readings_csv_async(
        ReadingRepository(session).iter_readings_with_type(sensor_ids), readings_path
    )
    faults = await FaultRepository(session).list_for_sensors(sensor_ids)
    n_faults = write_faults_csv(faults, faults_path or faults_path_for(readings_path))
    return n_readings, n_faults
