"""Exploratory data analysis of sensor readings: the tables (summaries, gaps, daily profile, dropout check).

Everything takes a readings frame in the :func:`core.ml.datasets.load_sensor_csv` format (``sensor_id,
sensor_type, value, unit, timestamp, quality``; UTC timestamps) and returns results; nothing here reads or writes
files. The figures are in :mod:`core.ml.eda.plots`, the MLflow run in :mod:`core.ml.eda.tracking`; notebook
``notebooks/01_data_exploration.ipynb`` is a thin driver of the three.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from core.ml.datasets import READINGS_COLUMNS, check_columns, fault_mask

#: Cadence of the demo fleet and of the ingest contract: one reading per sensor every 5 minutes.
DEFAULT_INTERVAL = pd.Timedelta(minutes=5)

_STAT_COLUMNS = ["mean", "std", "min", "max", "p01", "p99"]


# --------------------------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------------------------


def _interval(interval: timedelta | pd.Timedelta | str) -> pd.Timedelta:
    step = pd.Timedelta(interval)
    if step <= pd.Timedelta(0):
        raise ValueError("interval must be positive")
    return step


def _check_readings(readings: pd.DataFrame) -> None:
    missing = [c for c in READINGS_COLUMNS if c not in readings.columns]
    if missing:
        check_columns(list(readings.columns), READINGS_COLUMNS, source="readings frame")
    if not isinstance(readings["timestamp"].dtype, pd.DatetimeTZDtype):
        raise TypeError("readings frame: 'timestamp' must be timezone-aware (load it with load_sensor_csv)")


def _grid(
    readings: pd.DataFrame,
    step: pd.Timedelta,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> tuple[pd.Timestamp, int]:
    """First slot and index of the last slot of the expected grid ``start + k·step``.

    Defaults: the frame's first and last timestamp rounded to the nearest multiple of ``step`` since the Unix
    epoch (the slots the generator and gateways use), so jitter at the edges does not shift the grid.
    """
    start = readings["timestamp"].min().round(step) if start is None else pd.Timestamp(start)
    end = readings["timestamp"].max().round(step) if end is None else pd.Timestamp(end)
    return start, max(-1, round((end - start) / step))


def find_gaps(
    readings: pd.DataFrame,
    interval: timedelta | pd.Timedelta | str = DEFAULT_INTERVAL,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    since_first: bool = False,
) -> pd.DataFrame:
    """Runs of missing reading slots per sensor, against the cadence ``interval``.

    The expected slots of every sensor are ``start + k·interval`` up to ``end`` (default: the first and last
    timestamp of the whole frame, rounded to a multiple of ``interval`` since the epoch), so a sensor that starts
    late or stops early has a gap at the edge. With ``since_first`` a sensor's slots start at its own first
    reading instead: starting late (a sensor commissioned later, or the demo fleet's sensor-011 starting 36 slots
    before the others) is not a gap, stopping early still is. Each reading fills its nearest slot (timing jitter
    below half an interval is not a gap; readings outside the range are ignored); a gap is a run of slots
    without a reading.

    Columns ``sensor_id, sensor_type, gap_start, gap_end, missing``: ``gap_start``/``gap_end`` are the first and
    last missing slot (inclusive, the convention of ``sensor_data_faults.csv``), ``missing`` the number of slots.
    """
    _check_readings(readings)
    step = _interval(interval)
    empty = pd.DataFrame(
        {
            "sensor_id": pd.Series(dtype="str"),
            "sensor_type": pd.Series(dtype="str"),
            "gap_start": pd.Series(dtype=readings["timestamp"].dtype),
            "gap_end": pd.Series(dtype=readings["timestamp"].dtype),
            "missing": pd.Series(dtype="int64"),
        }
    )
    if readings.empty:
        return empty
    start, last_slot = _grid(readings, step, start, end)
    parts = []
    for (sensor_id, sensor_type), group in readings.groupby(["sensor_id", "sensor_type"], sort=True):
        # each reading occupies its nearest slot of the grid start + k·step; sentinels just outside the range
        # turn missing slots at the edges into ordinary gaps
        slots = ((group["timestamp"].dropna() - start) / step).round().astype("int64")
        slots = np.unique(slots[(slots >= 0) & (slots <= last_slot)].to_numpy())
        before = slots[0] - 1 if since_first and len(slots) else -1
        slots = np.concatenate([[before], slots, [last_slot + 1]])
        run = np.diff(slots)
        hit = np.flatnonzero(run >= 2)
        if not len(hit):
            continue
        parts.append(
            pd.DataFrame(
                {
                    "sensor_id": sensor_id,
                    "sensor_type": sensor_type,
                    "gap_start": start + (slots[hit] + 1) * step,
                    "gap_end": start + (slots[hit + 1] - 1) * step,
                    "missing": (run[hit] - 1).astype("int64"),
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else empty


def _value_stats(groups: Any) -> pd.DataFrame:
    """mean, std (ddof 1), min, max, p01, p99 of ``value`` and the quality columns of a grouped frame."""
    values = groups["value"]
    stats = values.agg(["count", "mean", "std", "min", "max"])
    stats["p01"] = values.quantile(0.01)
    stats["p99"] = values.quantile(0.99)
    stats["mean_quality"] = groups["quality"].mean()
    stats["low_quality_share"] = groups["quality"].agg(
        lambda q: float((q < 1.0).sum()) / len(q) if len(q) else np.nan
    )
    return stats


def sensor_summary(
    readings: pd.DataFrame,
    interval: timedelta | pd.Timedelta | str = DEFAULT_INTERVAL,
    *,
    gaps: pd.DataFrame | None = None,
    since_first: bool = False,
) -> pd.DataFrame:
    """One row per sensor (index ``sensor_id``).

    Columns: ``sensor_type, unit, first, last, count`` (readings), ``expected`` (slots of the frame's time range at
    ``interval``, from the sensor's own first reading with ``since_first``, as in :func:`find_gaps`), ``missing``
    (slots without a reading), ``gaps`` (runs of missing slots), ``mean, std, min, max, p01, p99`` of ``value``,
    ``mean_quality`` and ``low_quality_share`` (share of readings with quality < 1). ``gaps`` (the frame of
    :func:`find_gaps`) must have been found with the same ``since_first``.
    """
    _check_readings(readings)
    step = _interval(interval)
    gaps = find_gaps(readings, step, since_first=since_first) if gaps is None else gaps
    groups = readings.groupby("sensor_id", sort=True)
    summary = groups.agg(
        sensor_type=("sensor_type", "first"),
        unit=("unit", "first"),
        first=("timestamp", "min"),
        last=("timestamp", "max"),
    )
    stats = _value_stats(groups)
    summary["count"] = groups.size()
    start, last_slot = _grid(readings, step) if len(readings) else (None, -1)
    summary["expected"] = last_slot + 1
    if since_first and len(readings):
        first_slot = ((summary["first"] - start) / step).round().astype("int64").clip(lower=0)
        summary["expected"] = (last_slot + 1 - first_slot).clip(lower=0).astype("int64")
    by_sensor = gaps.groupby("sensor_id")["missing"]
    summary["missing"] = by_sensor.sum().reindex(summary.index, fill_value=0).astype("int64")
    summary["gaps"] = by_sensor.size().reindex(summary.index, fill_value=0).astype("int64")
    for column in [*_STAT_COLUMNS, "mean_quality", "low_quality_share"]:
        summary[column] = stats[column]
    return summary


def type_summary(
    readings: pd.DataFrame,
    interval: timedelta | pd.Timedelta | str = DEFAULT_INTERVAL,
    *,
    sensors: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per sensor type (index ``sensor_type``): the values of its sensors pooled.

    Columns: ``unit, sensors, count, expected, missing, gaps`` (summed over its sensors) and the value and quality
    statistics of :func:`sensor_summary` computed over all readings of the type.
    """
    _check_readings(readings)
    sensors = sensor_summary(readings, interval) if sensors is None else sensors
    groups = readings.groupby("sensor_type", sort=True)
    summary = groups.agg(unit=("unit", "first"), sensors=("sensor_id", "nunique"))
    summary["count"] = groups.size()
    totals = sensors.groupby("sensor_type")[["expected", "missing", "gaps"]].sum()
    for column in ["expected", "missing", "gaps"]:
        summary[column] = totals[column].reindex(summary.index, fill_value=0).astype("int64")
    stats = _value_stats(groups)
    for column in [*_STAT_COLUMNS, "mean_quality", "low_quality_share"]:
        summary[column] = stats[column]
    return summary


def daily_profile(readings: pd.DataFrame, faults: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean value by UTC hour of day (index ``hour`` 0–23) per sensor type (one column each).

    With ``faults`` (the ground-truth frame), readings inside a fault window are left out so the profile shows
    the healthy daily cycle. Hours without readings are NaN.
    """
    _check_readings(readings)
    healthy = readings.loc[~fault_mask(readings, faults)]
    profile = (
        healthy.groupby([healthy["timestamp"].dt.hour.rename("hour"), "sensor_type"])["value"]
        .mean()
        .unstack("sensor_type")
        .reindex(range(24))
    )
    profile.index.name = "hour"
    profile.columns.name = None
    return profile


def match_gaps_to_faults(gaps: pd.DataFrame, faults: pd.DataFrame) -> pd.DataFrame:
    """The dropout faults of ``faults`` with the detected gap that covers each (NaN when none does).

    Columns: the fault's ``sensor_id, started_at, ended_at, magnitude`` and ``gap_start, gap_end, missing,
    recovered`` (True when a gap spans exactly the fault window).
    """
    dropouts = faults.loc[faults["kind"] == "dropout", ["sensor_id", "started_at", "ended_at", "magnitude"]]
    rows = []
    for fault in dropouts.itertuples(index=False):
        hits = gaps[
            (gaps["sensor_id"] == fault.sensor_id)
            & (gaps["gap_start"] <= fault.ended_at)
            & (gaps["gap_end"] >= fault.started_at)
        ]
        hit = hits.iloc[0] if len(hits) else None
        rows.append(
            {
                **fault._asdict(),
                "gap_start": hit["gap_start"] if hit is not None else pd.NaT,
                "gap_end": hit["gap_end"] if hit is not None else pd.NaT,
                "missing": int(hit["missing"]) if hit is not None else 0,
                "recovered": bool(
                    hit is not None
                    and hit["gap_start"] == fault.started_at
                    and hit["gap_end"] == fault.ended_at
                ),
            }
        )
    columns = [
        "sensor_id",
        "started_at",
        "ended_at",
        "magnitude",
        "gap_start",
        "gap_end",
        "missing",
        "recovered",
    ]
    return pd.DataFrame(rows, columns=columns)


@dataclass
class EdaSummary:
    """Result of :func:`summarize`: the tables and the headline numbers (``overview``) of one dataset."""

    sensors: pd.DataFrame
    types: pd.DataFrame
    gaps: pd.DataFrame
    daily_profile: pd.DataFrame
    overview: dict[str, Any] = field(default_factory=dict)
    faults: pd.DataFrame | None = None
    dropouts: pd.DataFrame | None = None

    def metrics(self) -> dict[str, float]:
        """The numeric entries of ``overview`` (what :func:`core.ml.eda.tracking.log_eda_run` logs as MLflow
        metrics)."""
        return {
            key: float(value)
            for key, value in self.overview.items()
            if isinstance(value, int | float | np.integer | np.floating)
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        tables = {
            "sensors": self.sensors,
            "types": self.types,
            "gaps": self.gaps,
            "daily_profile": self.daily_profile,
        }
        if self.faults is not None:
            tables["faults"] = self.faults
        if self.dropouts is not None:
            tables["dropouts"] = self.dropouts
        return tables

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``overview`` and every table as a list of records (times as ISO 8601 strings)."""
        return {"overview": jsonable(self.overview)} | {
            name: _records(table.reset_index() if name in {"sensors", "types", "daily_profile"} else table)
            for name, table in self.tables().items()
        }


def summarize(
    readings: pd.DataFrame,
    faults: pd.DataFrame | None = None,
    interval: timedelta | pd.Timedelta | str = DEFAULT_INTERVAL,
    *,
    since_first: bool = True,
) -> EdaSummary:
    """All tables of the exploration in one call; ``faults`` (optional) adds the dropout check and the fault
    counts, and keeps fault windows out of the daily profile.

    Gaps and expected slots count from each sensor's first reading (``since_first``, see :func:`find_gaps`):
    sensors of one dataset may start at different times, and only readings missing after a sensor has started
    (or a sensor that stops before the end) are gaps."""
    _check_readings(readings)
    step = _interval(interval)
    gaps = find_gaps(readings, step, since_first=since_first)
    sensors = sensor_summary(readings, step, gaps=gaps, since_first=since_first)
    types = type_summary(readings, step, sensors=sensors)
    profile = daily_profile(readings, faults)
    quality = readings["quality"]
    overview: dict[str, Any] = {
        "rows": len(readings),
        "sensors": int(readings["sensor_id"].nunique()),
        "sensor_types": int(readings["sensor_type"].nunique()),
        "start": readings["timestamp"].min(),
        "end": readings["timestamp"].max(),
        "interval_s": step.total_seconds(),
        "expected_readings": int(sensors["expected"].sum()),
        "missing_readings": int(gaps["missing"].sum()),
        "gap_count": len(gaps),
        "duplicate_readings": int(readings.duplicated(["sensor_id", "timestamp"]).sum()),
        "null_values": int(readings["value"].isna().sum()),
        "mean_quality": float(quality.mean()),
        "low_quality_share": float((quality < 1.0).mean()) if len(quality) else math.nan,
    }
    dropouts = None
    if faults is not None:
        dropouts = match_gaps_to_faults(gaps, faults)
        in_fault = fault_mask(readings, faults)
        overview |= {
            "fault_windows": len(faults),
            "fault_readings": int(in_fault.sum()),
            "dropout_faults": len(dropouts),
            "dropout_faults_recovered": int(dropouts["recovered"].sum()),
        }
    return EdaSummary(sensors, types, gaps, profile, overview, faults, dropouts)


# --------------------------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """``value`` with timestamps as ISO 8601 strings (``Z``), numpy scalars as Python ones and NaN/NaT as None."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat().replace("+00:00", "Z")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NaT or value is pd.NA:
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [jsonable(record) for record in frame.to_dict(orient="records")]
