"""The two studies of the vibration gauntlet (notebook 06).

* :func:`simulation_study` — a simulated run to failure with a known onset: window features, detectors trained on
  the healthy start, per-file indicators, the alarm stage; detection delay and false alarms per indicator.
* :func:`ims_study` — the same pipeline on a directory of IMS recordings (whatever part of a run is present).

Baseline / training split: the first ``healthy_fraction`` of the run's valid files (at least 2) is the healthy
part. Its first half trains the detectors; its second half is held out to measure the detectors' window-level
exceedance rate on unseen healthy data; all of it gives the alarm stage's baseline mean/SD.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.ml.vibration.alarms import AlarmConfig, AlarmResult, alarm_stage, detection_report
from core.ml.vibration.bearings import IMS_RPM, REXNORD_ZA_2115, BearingGeometry
from core.ml.vibration.indicators import (
    BASE_INDICATORS,
    file_indicators,
    run_features,
    score_windows,
    wide_indicators,
)
from core.ml.vibration.models import MODEL_KINDS, VibrationDetector, train_detector
from core.ml.vibration.readers import IMS_FS, IMS_ROWS, list_ims_run, read_ims_file
from core.ml.vibration.simulator import SimulatedRun, simulate_run

ALARM_INDICATORS = ("rms", "kurtosis", "env_bpfo", "env_bpfi", *MODEL_KINDS)


@dataclass
class Study:
    name: str
    files: pd.DataFrame
    windows: pd.DataFrame  # scored window features
    long: pd.DataFrame  # per file and bearing
    wide: pd.DataFrame  # alarm-stage input
    detectors: dict[str, VibrationDetector]
    baseline_files: list[int]
    train_files: list[int]
    heldout_files: list[int]
    alarms: AlarmResult
    config: AlarmConfig
    metrics: dict[str, float] = field(default_factory=dict)
    per_bearing: pd.DataFrame | None = None


def split_healthy(valid_index: list[int], healthy_fraction: float) -> tuple[list[int], list[int], list[int]]:
    """(baseline, train, held-out) file indices from the valid files in time order."""
    if len(valid_index) < 2:
        raise ValueError("a run needs at least 2 valid recordings for a healthy baseline")
    n_base = min(len(valid_index), max(2, math.ceil(healthy_fraction * len(valid_index))))
    baseline = valid_index[:n_base]
    n_train = math.ceil(n_base / 2)
    return baseline, baseline[:n_train], baseline[n_train:]


def _run_pipeline(
    name: str,
    files: pd.DataFrame,
    load: Callable[[pd.Series], np.ndarray],
    *,
    fs: float,
    geometry: BearingGeometry,
    rpm: float,
    window: int,
    overlap: float,
    healthy_fraction: float,
    config: AlarmConfig,
    random_state: int,
    progress: bool,
) -> Study:
    feats = run_features(
        files, load, fs=fs, geometry=geometry, rpm=rpm, window=window, overlap=overlap, progress=progress
    )
    level = feats.groupby("file_index")["rms"].median()
    # signal presence before any baseline exists: relative to the run's loudest-half median level
    reference = float(level[level >= level.median()].median())
    valid = [int(i) for i in level.index if level[i] >= 0.1 * reference]
    baseline, train, heldout = split_healthy(valid, healthy_fraction)
    healthy = feats[feats["file_index"].isin(train)]
    detectors = {k: train_detector(k, healthy, random_state=random_state) for k in MODEL_KINDS}
    scored = score_windows(feats, detectors)
    long = file_indicators(scored, files, (*BASE_INDICATORS, *MODEL_KINDS), baseline_files=len(baseline))
    long["signal_present"] = long["file_index"].isin(valid)
    wide = wide_indicators(long, ALARM_INDICATORS)
    base_mask = wide.index.isin(baseline)
    alarms = alarm_stage(wide, base_mask, config, valid=wide.index.isin(valid))
    study = Study(name, files, scored, long, wide, detectors, baseline, train, heldout, alarms, config)
    for kind, det in detectors.items():
        held = scored[scored["file_index"].isin(heldout)]
        study.metrics[f"{kind}_heldout_exceed_rate"] = (
            float((held[kind] > det.threshold).mean()) if len(held) else float("nan")
        )
    study.metrics |= {
        "files": len(files),
        "valid_files": len(valid),
        "baseline_files": len(baseline),
        "train_windows": len(healthy),
    }
    return study


def simulation_study(
    n_files: int = 120,
    onset: int = 70,
    *,
    fault: str = "outer",
    seed: int = 0,
    n_samples: int = IMS_ROWS,
    window: int = 2048,
    overlap: float = 0.5,
    healthy_fraction: float = 0.25,
    config: AlarmConfig | None = None,
    progress: bool = False,
) -> tuple[Study, SimulatedRun]:
    """The pipeline on a simulated IMS-like run (bearing 1 develops ``fault`` at file ``onset``). Metrics per
    indicator: ``<indicator>_delay_files`` / ``_delay_hours`` (first alarm at/after the onset on bearing 1 minus
    the onset; NaN when missed) and ``<indicator>_false_alarms`` (alarm episodes on bearing 1 before the onset
    plus every episode on the healthy bearings 2–4)."""
    run = simulate_run(n_files, onset, fault=fault, seed=seed, n_samples=n_samples)
    cfg = config or AlarmConfig()
    study = _run_pipeline(
        "simulation",
        run.files,
        lambda row: run.recording(int(row["file_index"])),
        fs=run.fs,
        geometry=run.geometry,
        rpm=run.rpm,
        window=window,
        overlap=overlap,
        healthy_fraction=healthy_fraction,
        config=cfg,
        random_state=seed,
        progress=progress,
    )
    if onset <= max(study.baseline_files):
        raise ValueError("the onset must come after the healthy baseline")
    minutes = float(run.files["hours_from_start"].diff().iloc[1] * 60)
    rows = []
    for ind in ALARM_INDICATORS:
        summary = study.alarms.summary
        faulty = detection_report(summary.loc[f"b1_{ind}", "alarm_starts"], onset)
        healthy_false = sum(
            detection_report(summary.loc[f"b{b}_{ind}", "alarm_starts"], None)["false_alarms"]
            for b in (2, 3, 4)
        )
        delay = faulty["delay"]
        row = {
            "indicator": ind,
            "detected_at_file": faulty["detected_at"],
            "delay_files": delay,
            "delay_hours": None if delay is None else delay * minutes / 60,
            "false_alarms_faulty_bearing": faulty["false_alarms"],
            "false_alarms_healthy_bearings": healthy_false,
        }
        rows.append(row)
        study.metrics[f"{ind}_delay_files"] = float("nan") if delay is None else float(delay)
        study.metrics[f"{ind}_false_alarms"] = float(faulty["false_alarms"] + healthy_false)
    study.per_bearing = pd.DataFrame(rows)
    study.metrics |= {"onset_file": onset, "sim_files": n_files}
    return study, run


def ims_study(
    run_dir: str,
    *,
    max_files: int | None = None,
    window: int = 2048,
    overlap: float = 0.5,
    healthy_fraction: float = 0.2,
    config: AlarmConfig | None = None,
    rpm: float = IMS_RPM,
    progress: bool = False,
) -> Study:
    """The pipeline on one IMS run directory. ``per_bearing``: per bearing and indicator the first confirmed
    alarm (file index, file name, hours before the last recording of the directory), or None."""
    files = list_ims_run(run_dir, max_files=max_files)
    cfg = config or AlarmConfig()
    study = _run_pipeline(
        f"ims-{run_dir.rstrip('/').split('/')[-1]}",
        files,
        lambda row: read_ims_file(row["path"]),
        fs=IMS_FS,
        geometry=REXNORD_ZA_2115,
        rpm=rpm,
        window=window,
        overlap=overlap,
        healthy_fraction=healthy_fraction,
        config=cfg,
        random_state=0,
        progress=progress,
    )
    meta = files.set_index("file_index")
    rows = []
    bearings = sorted(study.long["bearing"].unique())
    for b in bearings:
        for ind in ALARM_INDICATORS:
            s = study.alarms.summary.loc[f"b{b}_{ind}"]
            first = s["first_alarm"]
            rows.append(
                {
                    "bearing": int(b),
                    "indicator": ind,
                    "monitored_files": int(s["monitored_rows"]),
                    "exceedances": int(s["exceedances"]),
                    "alarm_file_index": None if first is None else int(first),
                    "alarm_file": None if first is None else meta.loc[first, "file"],
                    "hours_before_end": None if first is None else float(meta.loc[first, "hours_to_end"]),
                }
            )
    study.per_bearing = pd.DataFrame(rows)
    return study


def run_coverage(run_dir: str, nominal_minutes: float = 10.0) -> dict[str, Any]:
    """What part of a run a directory holds: files present, first/last time, span, and how many recordings a
    complete run over that span would have at the nominal cadence."""
    files = list_ims_run(run_dir)
    span_h = float(files["hours_to_end"].iloc[0])
    return {
        "files_present": len(files),
        "file_names": files["file"].tolist(),
        "first": str(files["timestamp"].iloc[0]),
        "last": str(files["timestamp"].iloc[-1]),
        "span_hours": round(span_h, 2),
        "nominal_files_over_span": round(span_h * 60 / nominal_minutes) + 1,
        # 1-based position each present file would have in a complete run at the nominal cadence
        "nominal_file_numbers": [round(h * 60 / nominal_minutes) + 1 for h in files["hours_from_start"]],
        "channels": int(read_ims_file(files["path"].iloc[0]).shape[1]),
    }


def signal_levels(run_dir: str) -> pd.DataFrame:
    """RMS (mean removed) per file and channel of an IMS directory: shows which files carry a signal."""
    files = list_ims_run(run_dir)
    rows = []
    for _, row in files.iterrows():
        data = read_ims_file(row["path"])
        rms = np.sqrt(((data - data.mean(axis=0)) ** 2).mean(axis=0))
        rows.append({"file": row["file"], **{f"ch{i + 1}": float(v) for i, v in enumerate(rms)}})
    return pd.DataFrame(rows)
