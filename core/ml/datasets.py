"""Datasets for training and analysis: loaders for the platform's real formats.

The CSV export of readings (``data/sensor_data.csv``) and of the fault ground truth
(``data/sensor_data_faults.csv``), both described in ``data/README.md``; the same readings frame from the database
(:func:`fetch_readings` / :func:`load_readings_from_db`, SQL in ``core/ml/datasets_repository.py``) and the
labels of completed work orders (:func:`fetch_work_order_labels` / :func:`load_work_order_labels`, read through
the maintenance service like ``python -m apps.cli export-labels``, or :func:`load_labels_csv` on such an export).

Every loader returns a frame with a fixed set of columns, timezone-aware UTC timestamps and float measurements,
and raises :class:`ValueError` naming what is wrong when a file does not have the documented header.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from core.config import PROJECT_ROOT

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.config import Settings

T = TypeVar("T")

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
        dtype=dict.fromkeys(text_columns, _TEXT),
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


# --- the database ---------------------------------------------------------------------------------------------
#: Columns of a work-order labels frame (``core.maintenance.schemas.LABEL_CSV_COLUMNS``, the export's header).
LABEL_TIME_COLUMNS: tuple[str, ...] = (
    "alert_opened_at",
    "alert_resolved_at",
    "first_anomaly_at",
    "last_anomaly_at",
    "completed_at",
)


def _readings_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(READINGS_COLUMNS))
    for column in ("sensor_id", "sensor_type", "unit"):
        frame[column] = frame[column].astype(object)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["value"] = frame["value"].astype("float64")
    frame["quality"] = pd.to_numeric(frame["quality"], errors="coerce").astype("float64")
    return frame.sort_values(["sensor_id", "timestamp"], kind="stable", ignore_index=True)


async def fetch_readings(
    session: AsyncSession,
    *,
    sensor_ids: Sequence[str] | None = None,
    sensor_types: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Readings with ``start <= timestamp < end`` of the given sensors / types as a frame in the
    ``load_sensor_csv`` format (same columns, dtypes and order)."""
    from core.ml.datasets_repository import readings_for_training

    rows = await readings_for_training(
        session, sensor_ids=sensor_ids, sensor_types=sensor_types, start=start, end=end, limit=limit
    )
    return _readings_frame(rows)


def _labels_frame(rows: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame([[getattr(r, c) for c in columns] for r in rows], columns=list(columns))
    for column in LABEL_TIME_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


async def fetch_work_order_labels(
    session: AsyncSession,
    *,
    sensor_id: str | None = None,
    since: datetime | None = None,
    page_size: int = 1000,
) -> pd.DataFrame:
    """The labels of completed work orders (one row per ``maintenance_logs`` row: outcome ``fault_confirmed`` or
    ``no_fault_found``, the sensor, the alert window and the linked anomalies), oldest completion first.
    Columns ``core.maintenance.schemas.LABEL_CSV_COLUMNS``."""
    from core.maintenance.schemas import LABEL_CSV_COLUMNS
    from core.maintenance.service import MaintenanceService

    service = MaintenanceService(session)
    rows: list[Any] = []
    offset = 0
    while True:
        page, _ = await service.labels(sensor_id=sensor_id, since=since, limit=page_size, offset=offset)
        rows.extend(page)
        if len(page) < page_size:
            break
        offset += page_size
    frame = _labels_frame(rows, LABEL_CSV_COLUMNS)
    return frame.sort_values(["completed_at", "log_id"], kind="stable", ignore_index=True)


def load_labels_csv(path: str | PathLike[str]) -> pd.DataFrame:
    """A CSV written by ``python -m apps.cli export-labels`` as the frame of :func:`fetch_work_order_labels`."""
    from core.maintenance.schemas import LABEL_CSV_COLUMNS

    frame = _read_csv(
        path, LABEL_CSV_COLUMNS, ("sensor_id", "rule", "severity", "outcome", "technician", "notes")
    )
    for column in LABEL_TIME_COLUMNS:
        frame[column] = _utc(frame[column], column, str(path))
    return frame.sort_values(["completed_at", "log_id"], kind="stable", ignore_index=True)


def _run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also inside a running event loop (Jupyter): then in a
    separate thread with its own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    values: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            values.append(asyncio.run(make()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="sm-ml-datasets")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return values[0]


def _in_session(settings: Settings | None, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def go() -> T:
        from core.config import load_settings
        from core.db.session import create_engine, create_session_factory, unit_of_work

        engine = create_engine(settings or load_settings(), pool_size=1, max_overflow=0)
        try:
            async with unit_of_work(create_session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return _run_sync(go)


def load_readings_from_db(
    *,
    sensor_ids: Sequence[str] | None = None,
    sensor_types: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """Sync :func:`fetch_readings` on a short-lived engine (``settings`` None: the process settings'
    ``DATABASE_URL``); for notebooks and scripts."""
    return _in_session(
        settings,
        lambda s: fetch_readings(
            s, sensor_ids=sensor_ids, sensor_types=sensor_types, start=start, end=end, limit=limit
        ),
    )


def load_work_order_labels(
    *, sensor_id: str | None = None, since: datetime | None = None, settings: Settings | None = None
) -> pd.DataFrame:
    """Sync :func:`fetch_work_order_labels` on a short-lived engine."""
    return _in_session(settings, lambda s: fetch_work_order_labels(s, sensor_id=sensor_id, since=since))
