"""Figures of the AI4I gauntlet (matplotlib, Agg): confusion matrix, ROC and PR curves of the champion (pooled
out-of-fold scores of the first CV repeat), CV F1 per model and feature set, feature importances of the registered
model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

DPI = 100


def confusion_figure(y: np.ndarray, predicted: np.ndarray, title: str) -> Figure:
    matrix = confusion_matrix(np.asarray(y).astype(int), np.asarray(predicted).astype(int), labels=[0, 1])
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        color = "white" if value > matrix.max() / 2 else "black"
        ax.text(j, i, f"{value:,}", ha="center", va="center", color=color, fontsize=12)
    ax.set_xticks([0, 1], ["no failure", "failure"])
    ax.set_yticks([0, 1], ["no failure", "failure"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def roc_pr_figure(
    y: np.ndarray, score: np.ndarray, title: str, rules_point: tuple[float, float, float] | None = None
) -> Figure:
    """ROC and precision-recall curves; ``rules_point`` = (fpr, recall, precision) of the published limits."""
    y = np.asarray(y).astype(int)
    fpr, tpr, _ = roc_curve(y, score)
    precision, recall, _ = precision_recall_curve(y, score)
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(8.5, 3.8))
    ax_roc.plot(fpr, tpr, lw=1.5)
    ax_roc.plot([0, 1], [0, 1], ls=":", color="grey")
    ax_roc.set_xlabel("false positive rate")
    ax_roc.set_ylabel("true positive rate (recall)")
    ax_roc.set_title("ROC", fontsize=9)
    ax_pr.plot(recall, precision, lw=1.5)
    ax_pr.axhline(y.mean(), ls=":", color="grey", label=f"base rate {y.mean():.3f}")
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    ax_pr.set_title("precision-recall", fontsize=9)
    if rules_point is not None:
        ax_roc.plot(rules_point[0], rules_point[1], "r^", label="published limits")
        ax_pr.plot(rules_point[1], rules_point[2], "r^", label="published limits")
        ax_roc.legend(fontsize=7, loc="lower right")
    ax_pr.legend(fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def cv_f1_figure(
    folds: Mapping[str, Sequence[float]], rules_f1: float | None, target: float = 0.90
) -> Figure:
    """Box plot of the test-fold F1 per model/feature set, with the target and the rules' F1."""
    names = list(folds)
    fig, ax = plt.subplots(figsize=(8.0, 3.8))
    ax.boxplot(
        [list(folds[n]) for n in names], vert=False, tick_labels=[n.replace("__", " / ") for n in names]
    )
    ax.axvline(target, color="green", ls="--", lw=1, label=f"target {target:.2f}")
    if rules_f1 is not None:
        ax.axvline(rules_f1, color="red", ls=":", lw=1, label=f"published limits (ceiling) {rules_f1:.3f}")
    ax.set_xlabel("failure-class F1 per test fold")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def feature_importance_figure(importances: pd.Series, title: str) -> Figure:
    ordered = importances.sort_values()
    fig, ax = plt.subplots(figsize=(6.0, 0.28 * len(ordered) + 1.2))
    ax.barh(ordered.index, ordered.to_numpy())
    ax.set_xlabel("importance")
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return fig


def feature_importances(estimator: Any, features: pd.DataFrame, y: pd.Series, seed: int = 0) -> pd.Series:
    """Native importances (normalised to sum 1) when the model has them, else permutation importance (PR-AUC)."""
    native = getattr(estimator, "feature_importances_", None)
    if native is not None:
        values = np.asarray(native, dtype=float)
        total = values.sum()
        return pd.Series(values / total if total > 0 else values, index=features.columns)
    from sklearn.inspection import permutation_importance

    result = permutation_importance(
        estimator, features, y, scoring="average_precision", n_repeats=3, random_state=seed, n_jobs=1
    )
    return pd.Series(result.importances_mean, index=features.columns)


def save(figures: Mapping[str, Figure], output_dir: str | PathLike[str]) -> list[Path]:
    """Write ``<name>.png`` per figure (100 dpi) and close them."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        path = out / f"{name}.png"
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        paths.append(path)
    return paths
