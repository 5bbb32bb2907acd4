"""Figures of a forecasting study (matplotlib, Agg): forecast vs actual with intervals per sensor type (test folds),
test MAE by horizon step, skill against the seasonal naive per type, interval coverage (nominal vs measured on the
test folds, calibrated and raw), and (tuning) the validation search.

Saved with :func:`core.ml.eda.plots.save_figures` (100 dpi, 256-colour PNG) as ``<prefix>_<name>.png``.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from core.ml.eda.plots import save_figures as _save

if TYPE_CHECKING:
    from core.ml.forecast.study import ForecastStudy

COLOURS = {"naive": "#7f7f7f", "prophet": "#1f77b4", "lightgbm": "#2ca02c"}
CONTEXT_SLOTS = 72  # history shown before the first test cut-off


def forecast_figure(study: ForecastStudy, sensor_type: str) -> Figure:
    """One panel per sensor of the type: actual readings around the test folds, each method's forecast per fold
    with its interval band; the registered method is drawn bold; fault-window readings marked ×."""
    pred = study.test_predictions[study.test_predictions["sensor_type"] == sensor_type]
    sensors = sorted(pred["sensor_id"].unique())
    fig, axes = plt.subplots(len(sensors), 1, figsize=(10, 2.6 * len(sensors)), squeeze=False, sharex=True)
    chosen = study.chosen[sensor_type].method
    cov = study.test_intervals[study.test_intervals["sensor_type"] == sensor_type].set_index("model")["coverage"]
    start = pred["cutoff"].min() - CONTEXT_SLOTS * study.folds[0].freq
    for ax, sensor_id in zip(axes[:, 0], sensors, strict=True):
        actual = study.readings[
            (study.readings["sensor_id"] == sensor_id) & (study.readings["timestamp"] >= start)
        ]
        ax.plot(actual["timestamp"], actual["value"], color="black", lw=0.9, label="actual")
        p = pred[pred["sensor_id"] == sensor_id]
        faulty = p[p["in_fault"] & p["actual"].notna()].drop_duplicates("timestamp")
        if len(faulty):
            ax.scatter(
                faulty["timestamp"], faulty["actual"], marker="x", color="red", s=14, label="fault window"
            )
        for method, colour in COLOURS.items():
            m = p[p["method"] == method]
            for i, (_, fold) in enumerate(m.groupby("fold")):
                ax.plot(
                    fold["timestamp"],
                    fold["yhat"],
                    color=colour,
                    lw=2.0 if method == chosen else 1.0,
                    label=_method_label(method, chosen, cov.get(method)) if i == 0 else None,
                )
                if fold["yhat_lower"].notna().all():
                    ax.fill_between(
                        fold["timestamp"], fold["yhat_lower"], fold["yhat_upper"], color=colour, alpha=0.12
                    )
        for cutoff in p["cutoff"].unique():
            ax.axvline(cutoff, color="grey", lw=0.5, ls=":")
        ax.set_ylabel(sensor_id, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, ncol=5, loc="upper left")
    interval = round(study.config.interval * 100)
    fig.suptitle(
        f"{sensor_type}: test-fold forecasts (h = {study.config.horizon} slots) with calibrated {interval} % "
        "intervals (cov = share of test readings inside)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _method_label(method: str, chosen: str, coverage: float | None) -> str:
    label = f"{method} (registered)" if method == chosen else method
    return label + (f", cov {coverage:.2f}" if coverage is not None and np.isfinite(coverage) else "")


def coverage_figure(study: ForecastStudy) -> Figure:
    """Top, per type: calibrated coverage on the test folds against the nominal level (one line per method; the
    registered one bold), the ±5-point band around the diagonal, the raw (uncalibrated) coverage at the study's level
    as hollow squares. Bottom: calibrated coverage at the study's level per third of the horizon (does it depend on
    the horizon?)."""
    from core.ml.forecast.backtest import scored

    curve, table = study.coverage_curve, study.test_intervals
    types = sorted(table["sensor_type"].unique())
    fig, axes = plt.subplots(2, len(types), figsize=(3.2 * len(types), 6.2), squeeze=False)
    level = study.config.interval
    grid = np.linspace(0.4, 1.0, 7)
    rows = scored(study.test_predictions, study.config.exclude_faults)
    thirds = np.ceil(3 * rows["step"] / study.config.horizon).clip(1, 3).astype(int)
    rows = rows.assign(
        third=thirds, inside=(rows["actual"] >= rows["yhat_lower"]) & (rows["actual"] <= rows["yhat_upper"])
    )
    for ax, low, sensor_type in zip(axes[0], axes[1], types, strict=True):
        registered = study.chosen[sensor_type].method
        ax.fill_between(grid, grid - 0.05, grid + 0.05, color="#dddddd", label="±5 points")
        ax.plot(grid, grid, color="black", lw=0.7)
        low.axhspan(level - 0.05, level + 0.05, color="#dddddd")
        for method, colour in COLOURS.items():
            c = curve[(curve["sensor_type"] == sensor_type) & (curve["model"] == method)]
            t = table[(table["sensor_type"] == sensor_type) & (table["model"] == method)]
            width = 2.0 if method == registered else 1.0
            if len(c):
                ax.plot(c["nominal"], c["coverage"], color=colour, marker="o", ms=3, lw=width, label=method)
            if len(t):
                ax.scatter([level], t["coverage_raw"], facecolors="none", edgecolors=colour, s=40, marker="s")
            by_third = rows[(rows["sensor_type"] == sensor_type) & (rows["model"] == method)]
            by_third = by_third.groupby("third")["inside"].mean()
            if len(by_third):
                low.plot(by_third.index, by_third.to_numpy(), color=colour, marker="o", ms=3, lw=width)
        ax.set_title(f"{sensor_type} (registered: {registered})", fontsize=9)
        ax.set_xlabel("nominal coverage", fontsize=8)
        ax.set_xlim(0.45, 1.0)
        ax.set_ylim(0.2, 1.02)
        ax.tick_params(labelsize=7)
        steps = study.config.horizon / 3
        low.set_xticks([1, 2, 3], [f"{round(steps * (i - 1)) + 1}–{round(steps * i)}" for i in (1, 2, 3)])
        low.set_xlabel("horizon steps", fontsize=8)
        low.set_ylim(0.2, 1.02)
        low.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("test coverage (□ = raw at nominal)", fontsize=8)
    axes[1, 0].set_ylabel(f"test coverage at {level:.0%} by horizon", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "Interval coverage on the test folds: sequential conformal calibration, at each origin from the earlier "
        f"folds only ({study.calibration_design.label}, chosen on the validation folds; bold = registered)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def horizon_figure(study: ForecastStudy) -> Figure:
    """Test MAE per horizon step, one panel per type, one line per method (fault readings excluded)."""
    errors = study.horizon_errors
    types = sorted(errors["sensor_type"].unique())
    fig, axes = plt.subplots(1, len(types), figsize=(3.2 * len(types), 3.0), squeeze=False)
    for ax, sensor_type in zip(axes[0], types, strict=True):
        e = errors[errors["sensor_type"] == sensor_type]
        for method, colour in COLOURS.items():
            m = e[e["model"] == method]
            if len(m):
                ax.plot(m["step"], m["mae"], color=colour, label=method, lw=1.2)
        ax.set_title(sensor_type, fontsize=9)
        ax.set_xlabel("horizon step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("test MAE", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def skill_figure(study: ForecastStudy) -> Figure:
    """Test skill vs the seasonal naive (1 − MAE/MAE_naive) per type and method; * marks the registered one."""
    report = study.report()
    types = sorted(report["sensor_type"].unique())
    methods = [m for m in COLOURS if m != "naive"]
    fig, ax = plt.subplots(figsize=(8, 3.4))
    x = np.arange(len(types))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        rows = report[report["method"] == method].set_index("sensor_type").reindex(types)
        values = rows["test_skill"].to_numpy(dtype=float)
        bars = ax.bar(
            x + (i - (len(methods) - 1) / 2) * width,
            np.nan_to_num(values),
            width,
            color=COLOURS[method],
            label=method,
        )
        for bar, value, registered in zip(bars, values, rows["registered"].fillna(False), strict=True):
            label = f"{value:+.2f}{'*' if registered else ''}" if np.isfinite(value) else "n/a"
            y = bar.get_height()
            ax.annotate(
                label,
                (bar.get_x() + bar.get_width() / 2, y),
                ha="center",
                va="bottom" if y >= 0 else "top",
                fontsize=7,
            )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, types, fontsize=8)
    ax.set_ylabel("skill vs seasonal naive (test)", fontsize=8)
    naive_reg = [t for t in types if study.chosen[t].method == "naive"]
    note = f"; naive registered for {', '.join(naive_reg)}" if naive_reg else ""
    ax.set_title(f"Skill on the test folds (* = registered method{note})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def validation_figure(study: ForecastStudy) -> Figure:
    """Validation MAE of every candidate per type (one dot per configuration), the chosen one circled."""
    scores = study.validation_scores
    types = sorted(scores["sensor_type"].unique())
    fig, axes = plt.subplots(1, len(types), figsize=(3.2 * len(types), 3.0), squeeze=False)
    for ax, sensor_type in zip(axes[0], types, strict=True):
        s = scores[scores["sensor_type"] == sensor_type]
        for j, (method, colour) in enumerate(COLOURS.items()):
            m = s[s["method"] == method]
            xs = np.full(len(m), j) + np.linspace(-0.2, 0.2, len(m))
            ax.scatter(xs, m["mae"], color=colour, s=12)
            best = study.selected[sensor_type].get(method)
            if best is not None and len(m):
                pick = m["params"].map(lambda p, best=best: p == best.params).to_numpy()
                ax.scatter(
                    xs[pick][:1], m["mae"].to_numpy()[pick][:1], facecolors="none", edgecolors="red", s=60
                )
        ax.set_xticks(range(len(COLOURS)), list(COLOURS), fontsize=7)
        ax.set_title(f"{sensor_type} → {study.chosen[sensor_type].method}", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("validation MAE", fontsize=8)
    fig.tight_layout()
    return fig


def build_figures(study: ForecastStudy, prefix: str = "train") -> dict[str, Figure]:
    figures = {f"{prefix}_forecast_{t}": forecast_figure(study, t) for t in sorted(study.chosen)}
    figures[f"{prefix}_error_by_horizon"] = horizon_figure(study)
    figures[f"{prefix}_skill"] = skill_figure(study)
    figures[f"{prefix}_coverage"] = coverage_figure(study)
    if study.config.grids is not None:
        figures[f"{prefix}_validation_search"] = validation_figure(study)
    return figures


def save_figures(figures: Mapping[str, Figure], out_dir: str | PathLike[str]) -> list[Path]:
    paths = _save(figures, out_dir)
    for fig in figures.values():
        plt.close(fig)
    return paths


__all__ = ["build_figures", "save_figures"]
