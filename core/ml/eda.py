"""Exploratory data analysis of sensor readings: tables, figures and one MLflow run.

Everything takes a readings frame in the :func:`core.ml.datasets.load_sensor_csv` format (``sensor_id,
sensor_type, value, unit, timestamp, quality``; UTC timestamps) and returns results; nothing here reads files
except :func:`dataset_params` (a digest of the inputs) or writes anywhere except :func:`save_figures` and
:func:`log_eda_run`. Notebook ``notebooks/01_data_exploration.ipynb`` is a thin driver of this module.

Figures are plain :class:`matplotlib.figure.Figure` objects on the Agg canvas (no pyplot state, no display
needed), so they can be created in a headless job, shown in a notebook and saved as PNG.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from os import PathLike
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from core.ml.datasets import READINGS_COLUMNS, check_columns, fault_mask

#: Cadence of the demo fleet and of the ingest contract: one reading per sensor every 5 minutes.
DEFAULT_INTERVAL = pd.Timedelta(minutes=5)
#: Resolution of saved figures; keeps the committed PNGs around 100 KB or less.
DEFAULT_DPI = 100
DEFAULT_EXPERIMENT = "eda"

#: Shade colour of each injected-fault kind in the time-series figures.
FAULT_COLORS: dict[str, str] = {
    "drift": "tab:orange",
    "variance": "tab:purple",
    "step": "tab:red",
    "stuck": "tab:brown",
    "spike": "tab:pink",
    "dropout": "tab:gray",
}

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
) -> pd.DataFrame:
    """Runs of missing reading slots per sensor, against the cadence ``interval``.

    The expected slots of every sensor are ``start + k·interval`` up to ``end`` (default: the first and last
    timestamp of the whole frame, rounded to a multiple of ``interval`` since the epoch), so a sensor that starts late or stops early has a gap at the edge. Each
    reading fills its nearest slot (timing jitter below half an interval is not a gap; readings outside the range
    are ignored); a gap is a run of slots without a reading.

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
        slots = np.concatenate([[-1], slots, [last_slot + 1]])
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
) -> pd.DataFrame:
    """One row per sensor (index ``sensor_id``).

    Columns: ``sensor_type, unit, first, last, count`` (readings), ``expected`` (slots of the frame's time range at
    ``interval``, as in :func:`find_gaps`), ``missing`` (slots without a reading), ``gaps`` (runs of missing slots), ``mean, std, min, max,
    p01, p99`` of ``value``, ``mean_quality`` and ``low_quality_share`` (share of readings with quality < 1).
    """
    _check_readings(readings)
    step = _interval(interval)
    gaps = find_gaps(readings, step) if gaps is None else gaps
    groups = readings.groupby("sensor_id", sort=True)
    summary = groups.agg(
        sensor_type=("sensor_type", "first"),
        unit=("unit", "first"),
        first=("timestamp", "min"),
        last=("timestamp", "max"),
    )
    stats = _value_stats(groups)
    summary["count"] = groups.size()
    summary["expected"] = _grid(readings, step)[1] + 1 if len(readings) else 0
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
        """The numeric entries of ``overview`` (what :func:`log_eda_run` logs as MLflow metrics)."""
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
        return {"overview": _jsonable(self.overview)} | {
            name: _records(table.reset_index() if name in {"sensors", "types", "daily_profile"} else table)
            for name, table in self.tables().items()
        }


def summarize(
    readings: pd.DataFrame,
    faults: pd.DataFrame | None = None,
    interval: timedelta | pd.Timedelta | str = DEFAULT_INTERVAL,
) -> EdaSummary:
    """All tables of the exploration in one call; ``faults`` (optional) adds the dropout check and the fault
    counts, and keeps fault windows out of the daily profile."""
    _check_readings(readings)
    step = _interval(interval)
    gaps = find_gaps(readings, step)
    sensors = sensor_summary(readings, step, gaps=gaps)
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
# figures
# --------------------------------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _naive_utc(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Timestamps as naive UTC datetime64 (what matplotlib's date axis takes without converters)."""
    index = pd.DatetimeIndex(times)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.to_numpy()


def units_by_type(readings: pd.DataFrame) -> dict[str, str]:
    return readings.groupby("sensor_type")["unit"].first().to_dict()


def plot_sensor_type(
    readings: pd.DataFrame,
    sensor_type: str,
    faults: pd.DataFrame | None = None,
    interval: timedelta | pd.Timedelta | str = DEFAULT_INTERVAL,
) -> Figure:
    """Time series of every sensor of ``sensor_type`` (one panel each, shared time axis).

    Missing slots break the line; readings with quality < 1 are marked; the sensor's injected fault windows
    (from ``faults``) are shaded by kind, half a slot wider on each side so single-reading spikes show.
    """
    _check_readings(readings)
    step = _interval(interval)
    subset = readings.loc[readings["sensor_type"] == sensor_type]
    if subset.empty:
        raise ValueError(f"no readings of sensor type {sensor_type!r}")
    sensor_ids = sorted(subset["sensor_id"].unique())
    unit = subset["unit"].iloc[0]
    fig = _figure(10, 1.1 + 1.9 * len(sensor_ids))
    axes = fig.subplots(len(sensor_ids), 1, sharex=True, squeeze=False)[:, 0]
    start, last_slot = _grid(readings, step)
    gaps = find_gaps(subset, step, start=start, end=start + last_slot * step)
    kinds: set[str] = set()
    for ax, sensor_id in zip(axes, sensor_ids, strict=True):
        series = (
            subset.loc[subset["sensor_id"] == sensor_id].drop_duplicates("timestamp").set_index("timestamp")
        )
        slots = series.index
        for gap in gaps.loc[gaps["sensor_id"] == sensor_id].itertuples(index=False):
            slots = slots.union(pd.date_range(gap.gap_start, gap.gap_end, freq=step))
        line = series["value"].reindex(slots)  # NaN at missing slots breaks the line
        ax.plot(_naive_utc(line.index), line.to_numpy(), lw=0.8, color="tab:blue")
        noisy = series.loc[series["quality"] < 1.0]
        if len(noisy):
            ax.plot(_naive_utc(noisy.index), noisy["value"].to_numpy(), "x", ms=3, color="0.35", lw=0)
        if faults is not None:
            for fault in faults.loc[faults["sensor_id"] == sensor_id].itertuples(index=False):
                kinds.add(fault.kind)
                left, right = _naive_utc(
                    pd.DatetimeIndex([fault.started_at - step / 2, fault.ended_at + step / 2])
                )
                ax.axvspan(left, right, color=FAULT_COLORS.get(fault.kind, "tab:olive"), alpha=0.25, lw=0)
        ax.set_ylabel(f"{sensor_id}\n[{unit}]", fontsize=9)
        ax.grid(alpha=0.3)
    locator = mdates.AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes[-1].set_xlabel("time (UTC)")
    handles: list[Any] = [Line2D([], [], ls="", marker="x", ms=4, color="0.35", label="quality < 1")]
    handles += [
        Patch(color=FAULT_COLORS.get(k, "tab:olive"), alpha=0.25, label=f"injected {k}")
        for k in sorted(kinds)
    ]
    fig.legend(handles=handles, loc="outside upper right", ncols=len(handles), fontsize=8, frameon=False)
    fig.suptitle(f"{sensor_type}: readings per sensor", x=0.01, ha="left", fontsize=11)
    return fig


def plot_daily_profiles(profile: pd.DataFrame, units: Mapping[str, str] | None = None) -> Figure:
    """One panel per sensor type: mean value by UTC hour of day (the frame of :func:`daily_profile`)."""
    types = list(profile.columns)
    ncols = min(3, max(1, len(types)))
    nrows = math.ceil(len(types) / ncols) if types else 1
    fig = _figure(10, 2.6 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, sensor_type in zip(axes, types, strict=False):
        ax.plot(profile.index, profile[sensor_type].to_numpy(), marker="o", ms=3, lw=1.2)
        ax.set_title(sensor_type, fontsize=10)
        ax.set_xticks(range(0, 24, 6))
        ax.set_xlim(-0.5, 23.5)
        ax.set_xlabel("hour of day (UTC)", fontsize=8)
        if units and sensor_type in units:
            ax.set_ylabel(units[sensor_type], fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[len(types) :]:
        ax.set_visible(False)
    fig.suptitle(
        "Daily profile: mean value by hour of day (fault windows excluded)", x=0.01, ha="left", fontsize=11
    )
    return fig


def plot_value_distributions(readings: pd.DataFrame, bins: int = 40) -> Figure:
    """One panel per sensor type: histogram of the values of each of its sensors (outlines, shared bins)."""
    _check_readings(readings)
    types = sorted(readings["sensor_type"].unique())
    ncols = min(3, max(1, len(types)))
    nrows = math.ceil(len(types) / ncols) if types else 1
    fig = _figure(10, 2.6 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, sensor_type in zip(axes, types, strict=False):
        subset = readings.loc[readings["sensor_type"] == sensor_type].dropna(subset=["value"])
        edges = np.histogram_bin_edges(subset["value"].to_numpy(), bins=bins)
        for sensor_id, group in subset.groupby("sensor_id", sort=True):
            ax.hist(group["value"].to_numpy(), bins=edges, histtype="step", lw=1.2, label=sensor_id)
        ax.set_title(sensor_type, fontsize=10)
        ax.set_xlabel(subset["unit"].iloc[0], fontsize=8)
        ax.set_ylabel("readings", fontsize=8)
        ax.legend(fontsize=7, frameon=False)
        ax.grid(alpha=0.3)
    for ax in axes[len(types) :]:
        ax.set_visible(False)
    fig.suptitle(
        "Value distribution per sensor type (all readings, faults included)", x=0.01, ha="left", fontsize=11
    )
    return fig


def build_figures(
    readings: pd.DataFrame,
    faults: pd.DataFrame | None = None,
    profile: pd.DataFrame | None = None,
    interval: timedelta | pd.Timedelta | str = DEFAULT_INTERVAL,
) -> dict[str, Figure]:
    """Every EDA figure by file stem: ``timeseries_<type>`` per sensor type, ``daily_profiles``,
    ``value_distributions``."""
    figures = {
        f"timeseries_{sensor_type}": plot_sensor_type(readings, sensor_type, faults, interval)
        for sensor_type in sorted(readings["sensor_type"].unique())
    }
    profile = daily_profile(readings, faults) if profile is None else profile
    figures["daily_profiles"] = plot_daily_profiles(profile, units_by_type(readings))
    figures["value_distributions"] = plot_value_distributions(readings)
    return figures


def figure_png(fig: Figure, dpi: int = DEFAULT_DPI) -> bytes:
    """``fig`` as a compact PNG: rendered by Agg at ``dpi``, reduced to a 256-colour palette (no dithering; line
    plots look the same and the file is about a third of the size)."""
    from PIL import Image

    raw = io.BytesIO()
    fig.savefig(raw, format="png", dpi=dpi)
    raw.seek(0)
    with Image.open(raw) as image:
        palette = image.convert("RGB").quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


def save_figures(
    figures: Mapping[str, Figure], out_dir: str | PathLike[str], dpi: int = DEFAULT_DPI
) -> list[Path]:
    """Write each figure as ``<out_dir>/<name>.png`` (see :func:`figure_png`; directories created) and return
    the paths in order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        path = out / f"{name}.png"
        path.write_bytes(figure_png(fig, dpi))
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------------------------------
# MLflow
# --------------------------------------------------------------------------------------------------------------


def file_sha256(path: str | PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_params(
    data_path: str | PathLike[str], faults_path: str | PathLike[str] | None = None
) -> dict[str, str]:
    """Run parameters that identify the input files: their paths as given and their SHA-256 digests."""
    params = {"data_path": str(data_path), "data_sha256": file_sha256(data_path)}
    if faults_path is not None:
        params |= {"faults_path": str(faults_path), "faults_sha256": file_sha256(faults_path)}
    return params


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """``tracking_uri`` when given, else ``MLFLOW_TRACKING_URI`` from the settings."""
    if tracking_uri:
        return tracking_uri
    from core.config import load_settings

    return load_settings().mlflow_tracking_uri


def default_artifact_location(tracking_uri: str) -> str | None:
    """For a local sqlite store: ``<directory of the .db>/mlartifacts`` so the store is self-contained (MLflow's
    own default is ``./mlruns`` relative to the working directory). None otherwise: the server decides."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db_path = unquote(tracking_uri[len("sqlite:///") :].split("?", 1)[0])
    if not db_path or db_path == ":memory:":
        return None
    return (Path(db_path).resolve().parent / "mlartifacts").as_uri()


def _get_or_create_experiment(client: Any, name: str, artifact_location: str | None) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:
        experiment = client.get_experiment_by_name(name)  # created concurrently
        if experiment is None:
            raise
        return experiment.experiment_id


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
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
    return [_jsonable(record) for record in frame.to_dict(orient="records")]


def _param_value(value: Any) -> str:
    value = _jsonable(value)
    return value if isinstance(value, str) else json.dumps(value)


def log_eda_run(
    summary: EdaSummary,
    figures: Mapping[str, Figure] | Iterable[str | PathLike[str]],
    params: Mapping[str, Any] | None = None,
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    *,
    run_name: str | None = None,
    artifact_location: str | None = None,
    dpi: int = DEFAULT_DPI,
) -> str:
    """Log one MLflow run of an exploration and return its run id.

    * params: ``params`` (e.g. :func:`dataset_params`) plus ``rows``, ``sensors``, ``sensor_types``,
      ``interval_s``, ``start``, ``end`` from the summary;
    * metrics: the numeric ``summary.overview`` entries (rows, sensors, gap_count, missing_readings,
      mean_quality, low_quality_share, …);
    * artifacts: ``plots/<name>.png`` (``figures`` as figures by name, or paths of saved PNGs) and
      ``summary/<table>.csv`` for every table plus ``summary/summary.json``.

    ``tracking_uri`` None means the settings' ``MLFLOW_TRACKING_URI``. The experiment is created when missing
    (with ``artifact_location``, default :func:`default_artifact_location`). The run is named ``run_name``
    (default ``eda-<data file stem>``) and ends FINISHED, or FAILED when logging raises.
    """
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    location = artifact_location if artifact_location is not None else default_artifact_location(uri)
    experiment_id = _get_or_create_experiment(client, experiment, location)

    overview = summary.overview
    all_params = {
        key: overview[key]
        for key in ("rows", "sensors", "sensor_types", "interval_s", "start", "end")
        if key in overview
    }
    all_params |= dict(params or {})
    if run_name is None and "data_path" in all_params:
        run_name = f"eda-{Path(str(all_params['data_path'])).stem}"
    run = client.create_run(experiment_id, run_name=run_name, tags={"sm.kind": "eda"})
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(key, value, now, 0) for key, value in summary.metrics().items()],
            params=[Param(key, _param_value(value)) for key, value in all_params.items()],
            tags=[RunTag("sm.dataset", str(all_params.get("data_path", "")))],
        )
        with tempfile.TemporaryDirectory(prefix="sm-eda-") as tmp:
            plots = Path(tmp) / "plots"
            if isinstance(figures, Mapping):
                save_figures(figures, plots, dpi=dpi)
            else:
                plots.mkdir()
                for path in figures:
                    (plots / Path(path).name).write_bytes(Path(path).read_bytes())
            tables = Path(tmp) / "summary"
            tables.mkdir()
            for name, table in summary.tables().items():
                keep_index = name in {"sensors", "types", "daily_profile"}
                table.to_csv(tables / f"{name}.csv", index=keep_index, date_format="%Y-%m-%dT%H:%M:%SZ")
            (tables / "summary.json").write_text(
                json.dumps(summary.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8"
            )
            client.log_artifacts(run_id, str(plots), "plots")
            client.log_artifacts(run_id, str(tables), "summary")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id
