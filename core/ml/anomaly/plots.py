"""Figures of the anomaly models (Agg canvas, no pyplot state): score timelines with fault windows, split cuts
and the threshold; score distributions of normal and faulty readings; precision/recall/F1 against the threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.figure import Figure

from core.ml.anomaly.evaluation import SplitTimes, threshold_curve
from core.ml.eda.plots import _figure, _naive_utc, save_figures


def plot_score_timeline(result: Any, cuts: SplitTimes) -> Figure:
    """Per sensor of the type: the model's threshold-relative score (1 = threshold) and the baseline's, fault
    windows shaded, flagged readings marked, split cuts as dashed lines."""
    scores: pd.DataFrame = result.scores
    sensors = list(dict.fromkeys(scores["sensor_id"]))
    fig = _figure(11, 2.4 * len(sensors) + 0.6)
    axes = fig.subplots(len(sensors), 1, sharex=True, squeeze=False)[:, 0]
    baseline_t = result.choices["baseline"].threshold
    for ax, sensor in zip(axes, sensors, strict=True):
        part = scores[scores["sensor_id"] == sensor]
        t = _naive_utc(part["timestamp"])
        ax.plot(t, part["score"], lw=0.8, color="tab:blue", label="IsolationForest score / threshold")
        ax.plot(
            t,
            part["baseline_score"] / baseline_t,
            lw=0.6,
            color="tab:gray",
            alpha=0.7,
            label="robust_z / its threshold",
        )
        flagged = part["flag_iforest"].to_numpy()
        ax.scatter(
            t[flagged], part["score"].to_numpy()[flagged], s=9, color="tab:red", zorder=3, label="flagged"
        )
        ax.axhline(1.0, color="tab:red", ls=":", lw=1, label="threshold")
        if result.test_faults is not None:
            for fault in result.test_faults[result.test_faults["sensor_id"] == sensor].itertuples(
                index=False
            ):
                lo = _naive_utc(pd.Series([fault.started_at]))[0]
                hi = _naive_utc(pd.Series([fault.ended_at]))[0]
                if lo == hi:
                    hi = lo + np.timedelta64(5, "m")
                ax.axvspan(lo, hi, color="tab:orange", alpha=0.25, label=f"fault: {fault.kind}")
        for cut in (cuts.train_end, cuts.val_end):
            ax.axvline(_naive_utc(pd.Series([cut]))[0], color="black", ls="--", lw=0.8)
        top = float(np.nanpercentile(part["score"], 99.5)) if len(part) else 2.0
        ax.set_ylim(0, max(2.0, min(top * 1.2, 6.0)))
        ax.set_ylabel(sensor, fontsize=8)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), fontsize=6, loc="upper left", ncol=3)
    # matplotlib.dates ships no type stubs (its __init__ is unannotated)
    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))  # type: ignore[no-untyped-call]
    fig.suptitle(f"anomaly_{result.sensor_type}: score timeline (dashed: train | validation | test cuts)")
    return fig


def plot_score_distributions(results: Mapping[str, Any]) -> Figure:
    """Histograms of the raw IsolationForest score on the validation+test readings, normal vs faulty."""
    fig = _figure(4 * len(results), 3.2)
    axes = fig.subplots(1, len(results), squeeze=False)[0]
    for ax, (sensor_type, result) in zip(axes, results.items(), strict=True):
        s = result.scores[result.scores["split"] != "train"]
        bins = np.linspace(s["forest_score"].min(), s["forest_score"].max(), 40)
        ax.hist(
            s.loc[~s["faulty"], "forest_score"],
            bins=bins,
            color="tab:blue",
            alpha=0.7,
            density=True,
            label="normal",
        )
        if s["faulty"].any():
            ax.hist(
                s.loc[s["faulty"], "forest_score"],
                bins=bins,
                color="tab:orange",
                alpha=0.7,
                density=True,
                label="faulty",
            )
        ax.axvline(result.scorer.threshold, color="tab:red", ls=":", label="threshold")
        ax.set_title(sensor_type, fontsize=9)
        ax.set_xlabel("IsolationForest score", fontsize=8)
        ax.legend(fontsize=6)
    fig.suptitle("Score distributions (validation + test readings)")
    return fig


def plot_threshold_curves(results: Mapping[str, Any]) -> Figure:
    """Precision, recall and F1 on the test split against the raw IsolationForest threshold; the threshold
    chosen on validation marked."""
    fig = _figure(4 * len(results), 3.2)
    axes = fig.subplots(1, len(results), squeeze=False)[0]
    for ax, (sensor_type, result) in zip(axes, results.items(), strict=True):
        s = result.scores[result.scores["split"] == "test"]
        if s["faulty"].any():
            curve = threshold_curve(s["forest_score"].to_numpy(), s["faulty"].to_numpy())
            for column, color in (("precision", "tab:green"), ("recall", "tab:purple"), ("f1", "black")):
                ax.plot(curve["threshold"], curve[column], label=column, color=color, lw=1)
        else:
            ax.text(
                0.5,
                0.5,
                "no faulty reading\nin the test split",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=8,
            )
        ax.axvline(result.scorer.threshold, color="tab:red", ls=":", label="chosen on validation")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(sensor_type, fontsize=9)
        ax.set_xlabel("threshold (raw score)", fontsize=8)
        ax.legend(fontsize=6)
    fig.suptitle("Test split: precision / recall / F1 vs threshold")
    return fig


def build_figures(results: Mapping[str, Any], cuts: SplitTimes) -> dict[str, Figure]:
    figures = {f"scores_{t}": plot_score_timeline(r, cuts) for t, r in results.items()}
    figures["score_distributions"] = plot_score_distributions(results)
    figures["precision_recall_threshold"] = plot_threshold_curves(results)
    return figures


def save_all_figures(
    results: Mapping[str, Any], cuts: SplitTimes, out_dir: str | PathLike[str]
) -> list[Path]:
    return save_figures(build_figures(results, cuts), out_dir)


__all__ = [
    "build_figures",
    "plot_score_distributions",
    "plot_score_timeline",
    "plot_threshold_curves",
    "save_all_figures",
]
