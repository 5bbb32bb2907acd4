"""Figures of the audio gauntlet (matplotlib, Agg; saved with :func:`core.ml.eda.plots.save_figures`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from core.ml.audio.evaluation import ModelEvaluation
from core.ml.audio.features import DEFAULT_MEL, MelConfig, log_mel
from core.ml.audio.io import load_wav
from core.ml.audio.metrics import MAX_FPR


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_score_distributions(evaluations: Mapping[str, ModelEvaluation], title: str) -> Figure:
    """One panel per model: clip anomaly scores of normal vs anomalous clips (histogram + every clip as a tick)."""
    fig = _figure(3.6 * max(1, len(evaluations)), 3.2)
    axes = fig.subplots(1, max(1, len(evaluations)), squeeze=False)[0]
    for ax, (name, ev) in zip(axes, evaluations.items(), strict=False):
        scores = ev.clip_scores
        bins = np.histogram_bin_edges(scores["score"], bins=min(20, max(5, len(scores) // 3)))
        for label, color in (("normal", "tab:blue"), ("anomaly", "tab:red")):
            values = scores.loc[scores["label"] == label, "score"]
            ax.hist(values, bins=bins, alpha=0.5, color=color, label=f"{label} ({len(values)})")
            ax.plot(
                values,
                np.full(len(values), -0.05),
                "|",
                color=color,
                markersize=10,
                transform=ax.get_xaxis_transform(),
            )
        mean_auc = ev.by_id["auc"].mean()
        ax.set_title(f"{name}: mean AUC {mean_auc:.3f}" if not np.isnan(mean_auc) else name, fontsize=9)
        ax.set_xlabel("clip score (out-of-fold)")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("clips")
    fig.suptitle(title, fontsize=10)
    return fig


def plot_roc_per_id(
    evaluations: Mapping[str, ModelEvaluation], title: str, max_fpr: float = MAX_FPR
) -> Figure:
    """One panel per model, one ROC curve per machine id; the pAUC range [0, max_fpr] shaded."""
    from sklearn.metrics import roc_curve

    fig = _figure(3.4 * max(1, len(evaluations)), 3.3)
    axes = fig.subplots(1, max(1, len(evaluations)), squeeze=False)[0]
    for ax, (name, ev) in zip(axes, evaluations.items(), strict=False):
        scores = ev.clip_scores
        for (machine, machine_id), group in scores.groupby(["machine", "machine_id"]):
            y = (group["label"] == "anomaly").to_numpy(int)
            if 0 < y.sum() < len(y):
                fpr, tpr, _ = roc_curve(y, group["score"])
                row = ev.by_id[
                    (ev.by_id["machine"] == machine) & (ev.by_id["machine_id"] == machine_id)
                ].iloc[0]
                ax.step(fpr, tpr, where="post", label=f"{machine_id} AUC {row.auc:.2f} pAUC {row.pauc:.2f}")
        ax.axvspan(0, max_fpr, color="0.9", zorder=0)
        ax.plot([0, 1], [0, 1], ":", color="0.5")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false positive rate", title=name)
        ax.legend(fontsize=6, loc="lower right")
    axes[0].set_ylabel("true positive rate")
    fig.suptitle(title, fontsize=10)
    return fig


def plot_example_spectrograms(
    clips: pd.DataFrame, config: MelConfig = DEFAULT_MEL, max_ids: int = 2
) -> Figure:
    """Log-mel spectrogram of the first normal and the first anomalous clip of up to ``max_ids`` machine ids."""
    picks = []
    for _, group in list(clips.groupby(["machine", "machine_id"]))[:max_ids]:
        for label in ("normal", "anomaly"):
            of_label = group[group["label"] == label]
            if len(of_label):
                picks.append(of_label.iloc[0])
    fig = _figure(3.3 * min(2, len(picks)), 2.1 * int(np.ceil(len(picks) / 2)))
    axes = fig.subplots(int(np.ceil(len(picks) / 2)), min(2, len(picks)), squeeze=False).ravel()
    image = None
    for ax, row in zip(axes, picks, strict=False):
        spec = log_mel(load_wav(row["path"], config.sr), config)
        seconds = spec.shape[1] * config.hop_length / config.sr
        image = ax.imshow(
            spec, origin="lower", aspect="auto", extent=(0, seconds, 0, config.n_mels), cmap="magma"
        )
        ax.set_title(f"{row['machine']} {row['machine_id']} {row['label']}", fontsize=8)
        ax.set_xlabel("s")
        ax.set_ylabel("mel band")
    for ax in axes[len(picks) :]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=list(axes[: len(picks)]), label="dB", shrink=0.8)
    return fig
