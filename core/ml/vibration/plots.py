"""Figures of the vibration gauntlet (matplotlib, Agg): health-indicator timelines with alarms, envelope
spectra with the defect frequencies marked, and the simulator's detection study."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from core.ml.vibration.alarms import AlarmResult
from core.ml.vibration.diagnosis import Diagnosis
from core.ml.vibration.gauntlet import Study
from core.ml.vibration.simulator import SimulatedRun

DEFECT_COLOURS = {"bpfo": "tab:red", "bpfi": "tab:blue", "bsf": "tab:green", "ftf": "tab:purple"}


def plot_health_timelines(
    long: pd.DataFrame,
    alarms: AlarmResult,
    indicators: Sequence[str],
    *,
    x: str = "hours_from_start",
    onset_x: float | None = None,
    faulty_bearing: int | None = None,
    title: str = "",
) -> Figure:
    """One row per bearing, one column per indicator: the indicator per file, the baseline mean + k·SD
    threshold (dashed), exceedances (orange dots), confirmed alarm starts (red triangles), files without signal
    (grey ×), and the true onset when known."""
    bearings = sorted(long["bearing"].unique())
    fig = Figure(figsize=(2.7 * len(indicators), 1.55 * len(bearings) + 0.6))
    axes = fig.subplots(len(bearings), len(indicators), squeeze=False, sharex=True)
    for r, b in enumerate(bearings):
        part = long[long["bearing"] == b].sort_values("file_index")
        present = part["signal_present"].to_numpy(dtype=bool)
        for c, ind in enumerate(indicators):
            ax = axes[r, c]
            col = f"b{b}_{ind}"
            xs = part[x].to_numpy()
            ys = part[ind].to_numpy(dtype=float)
            ax.plot(xs[present], ys[present], lw=0.8, marker="." if present.sum() < 30 else None, color="k")
            if (~present).any():
                ax.plot(xs[~present], ys[~present], "x", color="grey", label="no signal")
            summ = alarms.summary.loc[col]
            ax.axhline(summ["threshold"], ls="--", lw=0.8, color="tab:orange")
            exceed = alarms.exceed[col].reindex(part["file_index"]).to_numpy(dtype=bool)
            ax.plot(xs[exceed], ys[exceed], "o", ms=2.5, color="tab:orange")
            starts = part["file_index"].isin(summ["alarm_starts"]).to_numpy()
            ax.plot(xs[starts], ys[starts], "v", ms=7, color="tab:red")
            if onset_x is not None and b == faulty_bearing:
                ax.axvline(onset_x, color="tab:green", lw=1)
            pos = ys[present]
            if len(pos) and np.all(pos > 0) and pos.max() / pos.min() > 10:  # log only when it spans decades
                ax.set_yscale("log")
            if r == 0:
                ax.set_title(ind, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"bearing {b}", fontsize=9)
            ax.tick_params(labelsize=7)
        axes[-1, 0].set_xlabel(x.replace("_", " "), fontsize=8)
    fig.suptitle(title or "health indicators (dashed: k-sigma threshold, ▼ confirmed alarm)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_envelope_spectra(
    diagnoses: Mapping[str, Diagnosis], *, max_hz: float | None = None, harmonics: int = 3
) -> Figure:
    """One panel per signal: the averaged envelope spectrum with BPFO, BPFI, 2·BSF and FTF (and harmonics)
    marked, titled with the diagnosis."""
    fig = Figure(figsize=(8, 1.6 * len(diagnoses) + 0.4))
    axes = fig.subplots(len(diagnoses), 1, squeeze=False)[:, 0]
    for ax, (label, d) in zip(axes, diagnoses.items(), strict=True):
        top = max_hz or 4.2 * d.defect_frequencies["bpfi"]
        keep = (d.freqs > 0) & (d.freqs <= top)
        ax.plot(d.freqs[keep], d.spectrum[keep], lw=0.7, color="k")
        marks = {
            "bpfo": d.defect_frequencies["bpfo"],
            "bpfi": d.defect_frequencies["bpfi"],
            "bsf": 2 * d.defect_frequencies["bsf"],
            "ftf": d.defect_frequencies["ftf"],
        }
        for key, f0 in marks.items():
            name = "2·BSF" if key == "bsf" else key.upper()
            for k in range(1, (1 if key == "ftf" else harmonics) + 1):
                if k * f0 <= top:
                    ax.axvline(
                        k * f0, color=DEFECT_COLOURS[key], lw=0.8, ls=":", label=name if k == 1 else None
                    )
        scores = ", ".join(f"{k} {v:.1f} dB" for k, v in d.scores_db.items())
        ax.set_title(
            f"{label}: diagnosis = {d.fault}   ({scores}; threshold {d.threshold_db:.1f} dB)", fontsize=8
        )
        ax.tick_params(labelsize=7)
        ax.set_ylabel("env. amplitude", fontsize=7)
    axes[0].legend(fontsize=7, ncol=4, loc="upper right")
    axes[-1].set_xlabel("frequency [Hz]", fontsize=8)
    fig.tight_layout()
    return fig


def plot_simulator_detection(study: Study, run: SimulatedRun, indicators: Sequence[str]) -> Figure:
    """Faulty bearing of the simulated run: the true impact amplitude (top) and each indicator's z-score
    against the baseline with the k threshold, the onset and the alarms."""
    fig = Figure(figsize=(9, 1.6 * (len(indicators) + 1) + 0.4))
    axes = fig.subplots(len(indicators) + 1, 1, sharex=True)
    idx = run.files["file_index"].to_numpy()
    axes[0].plot(idx, run.severities, color="tab:green")
    axes[0].set_ylabel("impact [g]", fontsize=7)
    axes[0].set_title(
        f"simulated {run.fault}-race defect on bearing {run.faulty_bearing}, onset at file {run.onset}"
        if run.fault != "ball"
        else f"simulated ball defect on bearing {run.faulty_bearing}, onset at file {run.onset}",
        fontsize=9,
    )
    k = study.config.k
    for ax, ind in zip(axes[1:], indicators, strict=True):
        col = f"b{run.faulty_bearing}_{ind}"
        z = study.alarms.zscores[col]
        ax.plot(z.index, z.to_numpy(), lw=0.8, color="k")
        ax.axhline(k, ls="--", color="tab:orange", lw=0.8)
        for s in study.alarms.summary.loc[col, "alarm_starts"]:
            ax.axvline(s, color="tab:red", lw=1.2)
        ax.set_ylabel(f"{ind}\nz", fontsize=7)
        ax.set_yscale("symlog", linthresh=10)
        ax.tick_params(labelsize=7)
    for ax in axes:
        ax.axvline(run.onset, color="tab:green", lw=1, ls="-.")
        ax.axvspan(0, max(study.baseline_files), color="0.9")
    axes[-1].set_xlabel("file index (grey: healthy baseline; green: true onset; red: alarm)", fontsize=8)
    fig.tight_layout()
    return fig
