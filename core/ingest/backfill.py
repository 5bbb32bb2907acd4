"""CSV backfill (``python -m apps.cli ingest-csv FILE``): COPY into a temporary table, then
``INSERT … ON CONFLICT DO NOTHING``, one transaction per batch, sensors auto-registered with the CSV's type.

The CSV has the header of ``data/sensor_data.csv``: ``sensor_id,sensor_type,value,unit,timestamp,quality``.
Every line is either stored, counted as a duplicate (already stored, or repeated in the file) or reported as
rejected with its line number and reason — nothing is dropped silently. The per-line rules are the ingest
endpoint's: finite value, quality in [0, 1] when present, timestamp with a timezone, not more than 5 minutes in
the future and not older than the retention window, a unit of at most 32 characters that is the sensor's or
converts to it (``core.ingest.sensors``: the value is stored converted; an empty unit is the sensor's; an unknown
sensor is registered with the CSV's type and the line's unit, else its type's catalogue unit). Each batch that
stored readings writes one ``ReadingsIngested`` event (marked as history) to the outbox in its transaction, through
the insert-and-outbox step every ingest path shares (``core.ingest.store``). The entry point is
``IngestService.backfill_csv`` (``core.ingest.service``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.session import unit_of_work
from core.fleet.types import MAX_SENSOR_ID_CHARS, MAX_UNIT_CHARS
from core.ingest.repository import IngestRepository
from core.ingest.schemas import (
    DEFAULT_BACKFILL_BATCH_SIZE,
    MAX_FUTURE,
    ValidReading,
)
from core.ingest.sensors import resolve_sensors, with_sensors_registered
from core.ingest.store import ReadingKey, first_occurrences, store_readings

CSV_COLUMNS = ("sensor_id", "sensor_type", "value", "unit", "timestamp", "quality")


class CsvHeaderError(ValueError):
    """The file does not start with the expected header."""


@dataclass(slots=True)
class BackfillReport:
    rows_read: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """``(line number, reason)`` of every invalid line (line 1 is the header)."""
    batches: int = 0


def _parse_line(line: int, values: list[str], now: datetime, oldest: datetime) -> ValidReading:
    if len(values) != len(CSV_COLUMNS):
        raise ValueError(f"expected {len(CSV_COLUMNS)} columns, got {len(values)}")
    sensor_id, sensor_type, raw_value, unit, raw_ts, raw_quality = (v.strip() for v in values)
    if any("\x00" in v for v in (sensor_id, sensor_type, unit)):
        raise ValueError("NUL character in a text column")
    if not sensor_id or len(sensor_id) > MAX_SENSOR_ID_CHARS or any(c.isspace() for c in sensor_id):
        raise ValueError("sensor_id: empty, too long or contains whitespace")
    if not sensor_type:
        raise ValueError("sensor_type: empty")
    if len(unit) > MAX_UNIT_CHARS:
        raise ValueError(f"unit: longer than {MAX_UNIT_CHARS} characters")
    try:
        value = float(raw_value)
    except ValueError:
        raise ValueError(f"value: not a number ({raw_value[:40]!r})") from None
    if not math.isfinite(value):
        raise ValueError("value: must be a finite number (no NaN or Infinity)")
    quality: float | None = None
    if raw_quality:
        try:
            quality = float(raw_quality)
        except ValueError:
            raise ValueError(f"quality: not a number ({raw_quality[:40]!r})") from None
        if not (0.0 <= quality <= 1.0):
            raise ValueError("quality: must be between 0 and 1")
    try:
        timestamp = datetime.fromisoformat(raw_ts)
    except ValueError:
        raise ValueError(f"timestamp: not ISO 8601 ({raw_ts[:40]!r})") from None
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError("timestamp: has no timezone")
    timestamp = timestamp.astimezone(UTC)
    if timestamp > now + MAX_FUTURE:
        raise ValueError("timestamp: more than 5 minutes in the future")
    if timestamp < oldest:
        raise ValueError("timestamp: older than the retention window")
    return ValidReading(line, sensor_id, value, timestamp, unit or None, quality, sensor_type[:64])


def count_data_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return max(0, sum(1 for _ in handle) - 1)


def _batches(
    path: Path, batch_size: int, report: BackfillReport, now: datetime, oldest: datetime
) -> Iterator[tuple[list[ValidReading], int]]:
    """Valid lines in batches (``index`` = line number), with the lines consumed per batch."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip().lstrip("\ufeff") for h in header) != CSV_COLUMNS:
            raise CsvHeaderError(f"{path}: the header must be {','.join(CSV_COLUMNS)}")
        batch: list[ValidReading] = []
        consumed = 0
        for values in reader:
            if not values:  # blank line: nothing to store, nothing to report
                continue
            report.rows_read += 1
            consumed += 1
            try:
                batch.append(_parse_line(reader.line_num, values, now, oldest))
            except ValueError as exc:
                report.rejected.append((reader.line_num, str(exc)))
                continue
            if len(batch) >= batch_size:
                yield batch, consumed
                batch, consumed = [], 0
        if batch or consumed:
            yield batch, consumed


async def _store_batch(
    factory: async_sessionmaker[AsyncSession],
    batch: list[ValidReading],
    seen: set[ReadingKey],
    report: BackfillReport,
) -> None:
    """One batch in one transaction; ``report`` and ``seen`` change only once it has committed. Keys already
    stored by earlier batches of the file (``seen``) or repeated in this batch count as duplicates."""
    async with unit_of_work(factory) as session:
        resolved = await resolve_sensors(IngestRepository(session), batch, auto_register=True)
        resolved.require_registered()
        rows, keys = first_occurrences(resolved.readings, seen)
        outcome = await store_readings(
            session, rows, event_id=uuid4(), backfill=True, force_copy=True, optimistic=True
        )
    seen |= keys
    report.rejected.extend((r.index, r.reason) for r in resolved.rejected)
    report.inserted += outcome.inserted
    report.duplicates += len(resolved.readings) - outcome.inserted


async def backfill_csv(
    factory: async_sessionmaker[AsyncSession],
    path: Path,
    *,
    retention_days: int,
    batch_size: int = DEFAULT_BACKFILL_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> BackfillReport:
    """Load ``path`` batch by batch (one transaction each); ``progress(lines)`` after each committed batch."""
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    report = BackfillReport()
    now = datetime.now(UTC)
    oldest = now - timedelta(days=retention_days)
    seen: set[ReadingKey] = set()
    for batch, consumed in _batches(path, batch_size, report, now, oldest):
        if batch:
            await with_sensors_registered(factory, partial(_store_batch, factory, batch, seen, report))
            report.batches += 1
        if progress is not None:
            progress(consumed)
    report.rejected.sort()
    return report


__all__ = [
    "CSV_COLUMNS",
    "BackfillReport",
    "CsvHeaderError",
    "backfill_csv",
    "count_data_lines",
]
