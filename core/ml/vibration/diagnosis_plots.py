"""Figures of the diagnosis report (matplotlib, Agg): kurtogram + squared envelope spectrum of one record,
confusion matrices, and the held-out share correct against impact amplitude and noise."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from core.ml.vibration.diagnosis import Diagnosis

FAMILY_COLOURS = {"outer race": "tab:red", "inner race": "tab:blue", "ball": "tab:green"}


def plot_kurtogram_ses(d: Diagnosis, title: str, harmonics: int = 3) -> Figure:
    """Left: the fast kurtogram of the pre-whitened record (chosen band boxed). Right: the squared envelope
    spectrum of the reported band (of the whitened or the raw signal, as chosen) with each family's fitted comb
    marked and the answer in the title."""
    fig = Figure(figsize=(12, 4.2))
    ax_k, ax_s = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    if d.kurtogram is not None:
        kg = d.kurtogram
        image = kg.as_image()
        mesh = ax_k.imshow(image, aspect="auto", origin="upper", cmap="viridis",
                           extent=(0, kg.fs / 2 / 1000, len(kg.levels) - 0.5, -0.5))  # fmt: skip
        ax_k.set_yticks(range(len(kg.levels)), [f"{lv:g}" for lv in kg.levels])
        fig.colorbar(mesh, ax=ax_k, label="spectral kurtosis")
        row = kg.levels.index(kg.best.level)
        ax_k.add_patch(Rectangle((kg.best.low / 1000, row - 0.5), kg.best.width / 1000, 1,
                                                    fill=False, ec="w", lw=2))  # fmt: skip
        ax_k.set_xlabel("frequency [kHz]")
        ax_k.set_ylabel("level")
        ax_k.set_title(f"kurtogram of the whitened record (max SK {kg.best.kurtosis:.1f} at "
                       f"{kg.best.low:.0f}–{kg.best.high:.0f} Hz)", fontsize=9)  # fmt: skip
    else:
        ax_k.text(0.5, 0.5, "band given: no kurtogram", ha="center", va="center")
        ax_k.set_axis_off()
    top = 1.15 * harmonics * max(d.impact_rates.values())
    keep = (d.freqs > 0) & (d.freqs <= top)
    ax_s.plot(d.freqs[keep], d.spectrum[keep], lw=0.7, color="k")
    for name, rate in d.fitted_rates.items():
        for k in range(1, harmonics + 1):
            ax_s.axvline(k * rate, color=FAMILY_COLOURS[name], ls="--", lw=0.8, alpha=0.8,
                         label=f"{name} ({d.impact_rates[name]:.1f} Hz)" if k == 1 else None)  # fmt: skip
    ax_s.set_xlabel("cyclic frequency [Hz]")
    ax_s.set_ylabel("squared envelope amplitude")
    scores = ", ".join(f"{k} {v:.1f}" for k, v in d.scores_db.items())
    signal = "whitened" if d.prewhitened else "raw"
    ax_s.set_title(f"{title}: {d.fault}  ({signal} signal, band {d.band[0]:.0f}–{d.band[1]:.0f} Hz; dB: {scores}; "
                   f"floor {d.threshold_db:.1f})", fontsize=8)  # fmt: skip
    ax_s.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def plot_confusions(tables: Mapping[str, pd.DataFrame]) -> Figure:
    """One annotated confusion matrix (truth × answer counts, row-normalised colour) per table."""
    fig = Figure(figsize=(4.6 * len(tables), 3.8))
    axes = np.atleast_1d(fig.subplots(1, len(tables)))
    for ax, (name, table) in zip(axes, tables.items(), strict=True):
        values = table.to_numpy(dtype=float)
        share = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{int(v)}", ha="center", va="center", color="w" if share[i, j] > 0.6 else "k")
        ax.set_xticks(range(table.shape[1]), list(table.columns), rotation=30, ha="right")
        ax.set_yticks(range(table.shape[0]), list(table.index))
        ax.set_xlabel("answer")
        ax.set_ylabel("truth")
        ax.set_title(name, fontsize=10)
    fig.tight_layout()
    return fig


def plot_detection(table: pd.DataFrame) -> Figure:
    """Held-out records: outcome against impact amplitude / noise SD (log), one panel per family."""
    fig = Figure(figsize=(13, 3.6))
    faults = [t for t in ("outer race", "inner race", "ball", "none") if t in set(table["truth"])]
    axes = np.atleast_1d(fig.subplots(1, len(faults), sharey=True))
    markers = {"correct": ("o", "tab:green"), "unknown": ("s", "tab:orange"), "missed": ("x", "tab:gray"),
               "false alarm": ("v", "tab:red"), "wrong family": ("v", "tab:red")}  # fmt: skip
    for ax, truth in zip(axes, faults, strict=True):
        sub = table[table["truth"] == truth]
        for name, (marker, colour) in markers.items():
            part = sub[sub["outcome"] == name]
            if not part.empty:
                ax.scatter(part["severity_g"] / part["noise_sd_g"], part["fs"] / 1000, marker=marker, c=colour,
                           s=18, label=f"{name} ({len(part)})")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("impact amplitude / noise SD")
        ax.set_title(truth, fontsize=10)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("sampling rate [kHz]")
    fig.tight_layout()
    return fig
