"""Figures of the exploratory data analysis (:mod:`core.ml.eda.analysis`) and :func:`save_figures`.

Figures are plain :class:`matplotlib.figure.Figure` objects on the Agg canvas (no pyplot state, no display
needed), so they can be created in a headless job, shown in a notebook and saved as PNG.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from datetime import timedelta
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from numpy.typing import NDArray

from core.ml.eda.analysis import DEFAULT_INTERVAL, _check_readings, _grid, _interval, daily_profile, find_gaps

#: Resolution of saved figures; keeps the committed PNGs around 100 KB or less.
DEFAULT_DPI = 100

#: Shade colour of each injected-fault kind in the time-series figures.
FAULT_COLORS: dict[str, str] = {
    "drift": "tab:orange",
    "variance": "tab:purple",
    "step": "tab:red",
    "stuck": "tab:brown",
    "spike": "tab:pink",
    "dropout": "tab:gray",
}


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _naive_utc(times: pd.Series | pd.DatetimeIndex) -> NDArray[np.datetime64]:
    """Timestamps as naive UTC datetime64 (what matplotlib's date axis takes without converters)."""
    index = pd.DatetimeIndex(times)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    stamps: NDArray[np.datetime64] = index.to_numpy()
    return stamps


def units_by_type(readings: pd.DataFrame) -> dict[str, str]:
    units: dict[str, str] = readings.groupby("sensor_type")["unit"].first().to_dict()
    return units


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
    # matplotlib.dates ships no type stubs (its constructors are unannotated)
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
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
