"""Reading the wide CSV of a back-test and turning its rows into ingest readings, in time order.

* The header is read first (``read_header``) so that the columns can be selected and planned
  (``core.backtest.specs``) before the file is loaded; ``load_frame`` then reads only the time column and the
  planned columns.
* Timestamps are ISO 8601 (``2003-10-22 12:06:24``, ``2003-10-22T12:06:24Z``, ``…+02:00``); a naive one is read
  in ``--timezone``, an aware one keeps its offset. Kept in UTC. An empty or unparseable timestamp is an error
  naming its line (line 1 is the header).
* Rows are sorted by time (stable: rows with the same timestamp keep their file order; their readings are then
  duplicates the API counts). Rows later than ``end`` (default: the last timestamp of the file) are not
  replayed.
* A value cell is a number, or empty / ``NaN`` / ``NA`` (no reading: counted in ``empty_cells``); ``inf`` is not a
  reading either (``nonfinite_cells``); any other text is an error naming its line and column.
* ``batches`` cuts the rows into requests of whole rows holding at most ``max_readings`` readings (the ingest
  limit is 10,000).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.backtest.specs import BacktestInputError, SensorPlan, parse_timestamp

#: Most readings one ingest request may carry (core.ingest.schemas.MAX_BATCH_ITEMS).
MAX_BATCH_READINGS = 10_000


def read_header(path: Path) -> list[str]:
    """The column names of the CSV file ``path``."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except FileNotFoundError:
        raise BacktestInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BacktestInputError(f"{path}: cannot read the CSV header ({exc})") from None
    if not header:
        raise BacktestInputError(f"{path}: empty file (expected a header line)")
    return header


@dataclass
class ReplayFrame:
    """The rows to replay, in time order: ``values[i, j]`` is column ``sensors[j]`` at ``times[i]`` (NaN: none)."""

    sensors: list[SensorPlan]
    times: list[datetime]
    values: np.ndarray[Any, np.dtype[np.float64]]
    end: datetime
    rows_in_file: int
    rows_after_end: int
    empty_cells: int
    nonfinite_cells: int
    readings: int = field(init=False)

    def __post_init__(self) -> None:
        self.readings = int(np.isfinite(self.values).sum())

    @property
    def rows(self) -> int:
        return len(self.times)

    @property
    def start(self) -> datetime | None:
        return self.times[0] if self.times else None

    def summary(self) -> dict[str, Any]:
        return {
            "rows_in_file": self.rows_in_file,
            "rows_replayed": self.rows,
            "rows_after_end": self.rows_after_end,
            "columns": len(self.sensors),
            "readings": self.readings,
            "empty_cells": self.empty_cells,
            "nonfinite_cells": self.nonfinite_cells,
        }


def _times(raw: pd.Series, time_column: str, tz: tzinfo) -> list[datetime]:
    times = []
    for position, text in enumerate(raw.tolist()):
        line = position + 2
        if not isinstance(text, str) or not text.strip():
            raise BacktestInputError(f"line {line}: empty timestamp in column {time_column!r}")
        try:
            times.append(parse_timestamp(text, tz))
        except ValueError:
            raise BacktestInputError(
                f"line {line}: cannot parse timestamp {text.strip()[:60]!r} in column {time_column!r} "
                "(expected ISO 8601, e.g. 2003-10-22 12:06:24 or 2003-10-22T12:06:24+02:00)"
            ) from None
    return times


def _values(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float64]]:
    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, column in enumerate(columns):
        raw = frame[column]
        numbers = pd.to_numeric(raw, errors="coerce")
        bad = numbers.isna() & raw.notna()
        if bad.any():
            position = int(np.flatnonzero(bad.to_numpy())[0])
            raise BacktestInputError(
                f"line {position + 2}, column {column!r}: not a number ({str(raw.iloc[position])[:40]!r})"
            )
        out[:, j] = numbers.to_numpy(dtype=np.float64)
    return out


def load_frame(
    path: Path, *, time_column: str, sensors: Sequence[SensorPlan], tz: tzinfo, end: datetime | None = None
) -> ReplayFrame:
    """Read the time column and the planned columns of ``path``, sorted by time, up to ``end`` inclusive."""
    columns = [s.sensor_id for s in sensors]
    try:
        frame = pd.read_csv(
            path,
            usecols=[time_column, *columns],
            dtype={time_column: str},
            encoding="utf-8-sig",
        )
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise BacktestInputError(f"{path}: cannot read the CSV ({str(exc).splitlines()[0][:200]})") from None
    if frame.empty:
        raise BacktestInputError(f"{path}: no data rows")
    times = _times(frame[time_column], time_column, tz)
    values = _values(frame, columns)
    order = np.argsort(np.array([t.timestamp() for t in times]), kind="stable")
    times = [times[i] for i in order]
    values = values[order]
    rows_in_file = len(times)
    last = end if end is not None else times[-1]
    if last < times[0]:
        raise BacktestInputError(
            f"--end {last.isoformat()} is before the file's first timestamp {times[0].isoformat()}"
        )
    keep = sum(1 for t in times if t <= last)
    times, values = times[:keep], values[:keep]
    nan = np.isnan(values)
    infinite = np.isinf(values)
    return ReplayFrame(
        sensors=list(sensors),
        times=times,
        values=values,
        end=last,
        rows_in_file=rows_in_file,
        rows_after_end=rows_in_file - keep,
        empty_cells=int(nan.sum()),
        nonfinite_cells=int(infinite.sum()),
    )


@dataclass(frozen=True)
class Batch:
    """One ingest request: whole rows ``[first_row, last_row]`` of the frame."""

    index: int
    first_row: int
    last_row: int
    readings: list[dict[str, Any]]


def check_batch_size(max_readings: int, width: int) -> None:
    """A request must hold a whole row of ``width`` readings and at most the ingest limit."""
    if not 1 <= max_readings <= MAX_BATCH_READINGS:
        raise BacktestInputError(f"--batch-size must be between 1 and {MAX_BATCH_READINGS}")
    if max_readings < width:
        raise BacktestInputError(
            f"--batch-size {max_readings} is smaller than a row ({width} columns): batches hold whole rows"
        )


def batches(frame: ReplayFrame, max_readings: int = MAX_BATCH_READINGS) -> Iterator[Batch]:
    """Requests of whole rows, in time order, each with at most ``max_readings`` readings (at least one row)."""
    check_batch_size(max_readings, len(frame.sensors))
    ids = [s.sensor_id for s in frame.sensors]
    units = [s.unit for s in frame.sensors]
    current: list[dict[str, Any]] = []
    first = 0
    index = 0
    for row, (when, values) in enumerate(zip(frame.times, frame.values, strict=True)):
        stamp = when.isoformat()
        readings = []
        for sensor_id, unit, value in zip(ids, units, values.tolist(), strict=True):
            if not np.isfinite(value):
                continue
            reading: dict[str, Any] = {"sensor_id": sensor_id, "value": value, "timestamp": stamp}
            if unit is not None:
                reading["unit"] = unit
            readings.append(reading)
        if current and len(current) + len(readings) > max_readings:
            yield Batch(index=index, first_row=first, last_row=row - 1, readings=current)
            index, current, first = index + 1, [], row
        current.extend(readings)
    if current:
        yield Batch(index=index, first_row=first, last_row=frame.rows - 1, readings=current)


__all__ = [
    "MAX_BATCH_READINGS",
    "Batch",
    "ReplayFrame",
    "batches",
    "check_batch_size",
    "load_frame",
    "read_header",
]
