"""Datasets for training and analysis: loaders for the platform's real formats.

Today: the CSV export of readings (``data/sensor_data.csv``) and of the fault ground truth
(``data/sensor_data_faults.csv``), both described in ``data/README.md``. Database loaders returning the same frames
will live here too.

Every loader returns a frame with a fixed set of columns, timezone-aware UTC timestamps and float measurements,
and raises :class:`ValueError` naming what is wrong when a file does not have the documented header.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import pandas as pd

from core.config import PROJECT_ROOT

#: Header of ``data/sensor_data.csv``, in file order (``core.simulation.export.READINGS_HEADER``).
READINGS_COLUMNS: tuple[str, ...] = ("sensor_id", "sensor_type", "value", "unit", "timestamp", "quality")
#: Header of ``data/sensor_data_faults.csv``, in file order (``core.simulation.export.FAULTS_HEADER``).
FAULTS_COLUMNS: tuple[str, ...] = ("sensor_id", "kind", "started_at", "ended_at", "magnitude", "description")

DEFAULT_READINGS_PATH = PROJECT_ROOT / "data" / "sensor_data.csv"
DEFAULT_FAULTS_PATH = PROJECT_ROOT / "data" / "sensor_data_faults.csv"

_TEXT = "str"


def _read_csv(
    path: str | PathLike[str], expected: Sequence[str], text_columns: Sequence[str]
) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    header = pd.read_csv(path, nrows=0, encoding="utf-8").columns.tolist()
    check_columns(header, expected, source=str(path))
    return pd.read_csv(
        path,
        encoding="utf-8",
        dtype={column: _TEXT for column in text_columns},
        keep_default_na=False,
        na_values={column: [""] for column in expected if column not in text_columns},
    )


def check_columns(columns: Sequence[str], expected: Sequence[str], *, source: str = "frame") -> None:
    """Raise ValueError unless ``columns`` is exactly ``expected`` (same names, same order)."""
    columns = list(columns)
    if columns == list(expected):
        return
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"unexpected columns {extra}")
    if duplicated:
        problems.append(f"duplicated columns {duplicated}")
    if not problems:
        problems.append(f"columns out of order {columns}")
    raise ValueError(f"{source}: header does not match {list(expected)}: " + "; ".join(problems))


def _utc(values: pd.Series, column: str, source: str) -> pd.Series:
    try:
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{source}: column {column!r} holds a value that is not an ISO 8601 time: {exc}"
        ) from None


def _float(values: pd.Series, column: str, source: str) -> pd.Series:
    try:
        return values.astype("float64")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{source}: column {column!r} holds a value that is not a number: {exc}") from None


def load_sensor_csv(path: str | PathLike[str] = DEFAULT_READINGS_PATH) -> pd.DataFrame:
    """Readings in the ``data/sensor_data.csv`` format.

    Columns ``sensor_id, sensor_type, value, unit, timestamp, quality``: text columns as pandas strings,
    ``value`` and ``quality`` float64 (an empty field is NaN), ``timestamp`` timezone-aware UTC ``datetime64``. Rows are
    sorted by sensor then time, with a fresh 0..n-1 index.
    """
    source = str(path)
    frame = _read_csv(path, READINGS_COLUMNS, ("sensor_id", "sensor_type", "unit"))
    frame["timestamp"] = _utc(frame["timestamp"], "timestamp", source)
    for column in ("value", "quality"):
        frame[column] = _float(frame[column], column, source)
    frame = frame.sort_values(["sensor_id", "timestamp"], kind="stable", ignore_index=True)
    return frame.loc[:, list(READINGS_COLUMNS)]


def load_fault_labels(path: str | PathLike[str] = DEFAULT_FAULTS_PATH) -> pd.DataFrame:
    """Injected-fault ground truth in the ``data/sensor_data_faults.csv`` format.

    Columns ``sensor_id, kind, started_at, ended_at, magnitude, description``; ``started_at``/``ended_at`` are
    the first and last affected reading slot (inclusive) as UTC times, ``magnitude`` is float64. Sorted by
    sensor, start and kind.
    """
    source = str(path)
    frame = _read_csv(path, FAULTS_COLUMNS, ("sensor_id", "kind", "description"))
    for column in ("started_at", "ended_at"):
        frame[column] = _utc(frame[column], column, source)
    frame["magnitude"] = _float(frame["magnitude"], "magnitude", source)
    frame = frame.sort_values(["sensor_id", "started_at", "kind"], kind="stable", ignore_index=True)
    return frame.loc[:, list(FAULTS_COLUMNS)]


def fault_mask(readings: pd.DataFrame, faults: pd.DataFrame | None) -> pd.Series:
    """True for each reading inside a fault window of its sensor (``started_at <= timestamp <= ended_at``).

    This is the labelling rule of ``data/README.md``; ``faults`` None labels nothing.
    """
    mask = pd.Series(False, index=readings.index)
    if faults is None:
        return mask
    for fault in faults.itertuples(index=False):
        mask |= (
            (readings["sensor_id"] == fault.sensor_id)
            & (readings["timestamp"] >= fault.started_at)
            & (readings["timestamp"] <= fault.ended_at)
        ).to_numpy()
    return mask
