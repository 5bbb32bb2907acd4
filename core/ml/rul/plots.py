"""Figures of the RUL study (Agg canvas, no pyplot state; saved with :func:`core.ml.eda.plots.save_figures`):
predicted vs true RUL with the 90 % intervals, interval coverage by true-RUL band, RMSE per fold beside the
published anchors."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from core.ml.rul.study import RulStudy

#: published FD001 test-set RMSE (the issue's anchors; not reproduced here — validation figures are on held-back
#: training engines)
ANCHORS: dict[str, float] = {"CNN (Babu 2016)": 18.45, "LSTM (Zheng 2017)": 16.14, "DCNN (Li 2018)": 12.61}


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def predicted_vs_true(table: pd.DataFrame, title: str, cap: float) -> Figure:
    """Each engine's estimate (dot) and interval (bar) against its true RUL."""
    fig = _figure(6.4, 5.2)
    ax = fig.add_subplot(1, 1, 1)
    t = table["true_rul"].to_numpy(dtype=float)
    p = table["predicted"].to_numpy(dtype=float)
    inside = (table["rul_lower"] <= table["true_rul"]) & (table["true_rul"] <= table["rul_upper"])
    for mask, color, label in ((inside, "tab:blue", "interval covers"), (~inside, "tab:red", "interval misses")):
        m = mask.to_numpy()
        ax.errorbar(
            t[m], p[m], yerr=[p[m] - table["rul_lower"].to_numpy()[m], table["rul_upper"].to_numpy()[m] - p[m]],
            fmt="o", ms=3, alpha=0.6, color=color, elinewidth=0.6, label=f"{label} ({int(m.sum())})",
        )  # fmt: skip
    top = max(float(t.max()), float(table["rul_upper"].max())) + 5
    ax.plot([0, top], [0, top], color="black", lw=0.8, label="perfect")
    ax.axhline(cap, color="grey", ls=":", lw=0.8, label=f"target cap {cap:g}")
    ax.set_xlabel("true RUL (cycles)")
    ax.set_ylabel("estimated RUL (cycles) and 90 % interval")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def coverage_by_band(table: pd.DataFrame, nominal: float, title: str) -> Figure:
    """Empirical coverage of the interval and its mean width per band of true RUL."""
    bands = [0, 25, 50, 75, 100, 125, np.inf]
    labels = ["0-24", "25-49", "50-74", "75-99", "100-124", "≥125"]
    band = pd.cut(table["true_rul"], bands, right=False, labels=labels)
    covered = (table["rul_lower"] <= table["true_rul"]) & (table["true_rul"] <= table["rul_upper"])
    grouped = pd.DataFrame({"band": band, "covered": covered, "width": table["rul_upper"] - table["rul_lower"]})
    stats = grouped.groupby("band", observed=False).agg(coverage=("covered", "mean"), n=("covered", "size"),
                                                          width=("width", "mean"))  # fmt: skip
    fig = _figure(7.2, 4.0)
    ax = fig.add_subplot(1, 2, 1)
    x = np.arange(len(labels))
    ax.bar(x, stats["coverage"].fillna(0).to_numpy(), color="tab:blue")
    ax.axhline(nominal, color="black", ls="--", lw=0.8, label=f"nominal {nominal:.0%}")
    ax.axhline(float(covered.mean()), color="tab:orange", lw=0.8, label=f"overall {covered.mean():.1%}")
    for i, n in enumerate(stats["n"]):
        ax.text(i, 0.02, f"n={n}", ha="center", fontsize=6, rotation=90, color="white")
    ax.set_xticks(x, labels, fontsize=7, rotation=30)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("true RUL band")
    ax.set_ylabel("coverage")
    ax.legend(fontsize=7, loc="lower right")
    ax2 = fig.add_subplot(1, 2, 2)
    ax2.bar(x, stats["width"].fillna(0).to_numpy(), color="tab:green")
    ax2.set_xticks(x, labels, fontsize=7, rotation=30)
    ax2.set_xlabel("true RUL band")
    ax2.set_ylabel("mean interval width (cycles)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def rmse_by_fold(study: RulStudy) -> Figure:
    """Validation RMSE of every fold, their mean, and the published test-set anchors (dashed)."""
    fig = _figure(6.4, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    scores = study.fold_scores
    labels = [f"r{r}f{f}" for r, f in zip(scores["repeat"], scores["fold"], strict=True)]
    ax.bar(np.arange(len(labels)), scores["rmse"].to_numpy(), color="tab:blue", label="validation fold RMSE")
    ax.axhline(float(scores["rmse"].mean()), color="tab:blue", lw=1.2, label=f"mean {scores['rmse'].mean():.2f}")
    for (name, value), color in zip(ANCHORS.items(), ("tab:red", "tab:orange", "tab:purple"), strict=True):
        ax.axhline(value, color=color, ls="--", lw=0.8, label=f"{name}: {value} (FD001 test)")
    ax.set_xticks(np.arange(len(labels)), labels, fontsize=7, rotation=90)
    ax.set_ylabel("RMSE (cycles)")
    ax.set_title("Validation RMSE per fold (held-back training engines) vs published test anchors", fontsize=9)
    ax.legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    return fig


def nested_coverage(study: RulStudy) -> Figure:
    """Per calibration variant: the per-engine coverage of every nested split (box) and its mean, the 88–92 %
    band shaded; the chosen variant in bold."""
    table = study.coverage
    variants = list(dict.fromkeys(table["variant"]))
    fig = _figure(9.6, 0.5 * len(variants) + 1.8)
    ax = fig.add_subplot(1, 1, 1)
    data = [table.loc[table["variant"] == v, "per_engine"].to_numpy() for v in variants]
    ax.axvspan(0.88, 0.92, color="tab:green", alpha=0.15, label="aim 88–92 %")
    ax.boxplot(data, vert=False, whis=(5, 95), showfliers=True, flierprops={"markersize": 2})
    means = [float(np.mean(d)) for d in data]
    ax.scatter(means, np.arange(1, len(variants) + 1), color="tab:red", zorder=3, s=14, label="mean")
    widths = [float(table.loc[table["variant"] == v, "width"].mean()) for v in variants]
    labels = [f"{v}  ({m:.1%}, width {w:.1f})" for v, m, w in zip(variants, means, widths, strict=True)]
    ax.set_yticks(np.arange(1, len(variants) + 1), labels, fontsize=7)
    for tick, v in zip(ax.get_yticklabels(), variants, strict=True):
        tick.set_fontweight("bold" if v == study.config.calibration_method else "normal")
    ax.axvline(1 - study.config.alpha, color="k", lw=0.8)
    ax.set_xlabel("per-engine coverage of the 90 % interval (uniform cut), one point per split")
    splits = int(len(table) / max(len(variants), 1))
    ax.set_title(f"Nested engine-grouped coverage, {splits} splits (box 25–75 %, whiskers 5–95 %)", fontsize=8)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def build_figures(study: RulStudy) -> Mapping[str, Figure]:
    nominal = 1.0 - study.config.alpha
    extra = {} if study.coverage.empty else {"nested_coverage": nested_coverage(study)}
    return extra | {
        "predicted_vs_true_cv": predicted_vs_true(
            study.predictions, "Out-of-fold estimates, validation engines (one cut each, all folds)", study.config.cap
        ),
        "predicted_vs_true_holdout": predicted_vs_true(
            study.holdout_predictions,
            "Final model on the promotion engines (never trained or calibrated on)",
            study.config.cap,
        ),  # fmt: skip
        "interval_coverage": coverage_by_band(study.predictions, nominal, "90 % interval, out-of-fold validation"),
        "rmse_by_fold": rmse_by_fold(study),
    }


__all__ = ["ANCHORS", "build_figures", "coverage_by_band", "nested_coverage", "predicted_vs_true", "rmse_by_fold"]
