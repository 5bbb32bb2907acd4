"""From recordings to per-window features and per-file health indicators of each bearing.

Health indicators per file and bearing (the median over the bearing's windows — and over both accelerometers in
IMS test 1): ``rms``, ``kurtosis``, ``env_bpfo``, ``env_bpfi``, ``env_bsf``, ``env_ftf`` and the detector scores.
A recording whose RMS (all channels) is below ``absent_fraction`` of the run's baseline median is flagged
``signal_present = False`` (the last files of IMS tests 2 and 3 were recorded after the rig stopped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from core.ml.vibration.bearings import BearingGeometry
from core.ml.vibration.features import window_features
from core.ml.vibration.models import VibrationDetector
from core.ml.vibration.readers import ims_bearing_channels

BASE_INDICATORS = ("rms", "kurtosis", "env_bpfo", "env_bpfi", "env_bsf", "env_ftf")


def run_features(
    files: pd.DataFrame,
    load: Callable[[pd.Series], np.ndarray],
    *,
    fs: float,
    geometry: BearingGeometry,
    rpm: float,
    window: int = 2048,
    overlap: float = 0.5,
    band: tuple[float, float] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Window features of every file of a run (``files`` as from ``list_ims_run``; ``load(row)`` → (samples,
    channels)). Adds ``file_index``, ``file``, ``timestamp``, ``bearing`` (IMS channel layout)."""
    rows: Iterable[tuple[Any, pd.Series]] = files.iterrows()
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(rows, total=len(files), desc="features")
    frames = []
    for _, row in rows:
        data = load(row)
        table = window_features(data, fs, geometry, rpm, window=window, overlap=overlap, band=band)
        bearing_of = {ch: b for b, chans in ims_bearing_channels(data.shape[1]).items() for ch in chans}
        table.insert(0, "bearing", table["channel"].map(bearing_of))
        table.insert(0, "timestamp", row["timestamp"])
        table.insert(0, "file", row["file"])
        table.insert(0, "file_index", int(row["file_index"]))
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def score_windows(features: pd.DataFrame, detectors: dict[str, VibrationDetector]) -> pd.DataFrame:
    """``features`` with one score column per detector name."""
    out = features.copy()
    for name, detector in detectors.items():
        out[name] = detector.score(features)
    return out


def file_indicators(
    scored: pd.DataFrame,
    files: pd.DataFrame,
    indicators: Iterable[str] = BASE_INDICATORS,
    *,
    baseline_files: int = 2,
    absent_fraction: float = 0.1,
) -> pd.DataFrame:
    """Long table: one row per file and bearing with the median of each indicator over the bearing's windows,
    plus ``hours_from_start``, ``hours_to_end`` and ``signal_present``."""
    cols = list(indicators)
    per = scored.groupby(["file_index", "bearing"])[cols].median().reset_index()
    level = scored.groupby("file_index")["rms"].median()
    reference = float(level.iloc[: max(1, baseline_files)].median())
    present = (level >= absent_fraction * reference).rename("signal_present")
    meta = files.set_index("file_index")[["file", "timestamp", "hours_from_start", "hours_to_end"]]
    per = per.join(meta, on="file_index").join(present, on="file_index")
    return per.sort_values(["bearing", "file_index"], ignore_index=True)


def wide_indicators(long: pd.DataFrame, indicators: Iterable[str]) -> pd.DataFrame:
    """Alarm-stage input: index file_index, columns ``b<bearing>_<indicator>``."""
    wide = long.pivot(index="file_index", columns="bearing", values=list(indicators))
    wide.columns = [f"b{b}_{name}" for name, b in wide.columns]
    return wide.sort_index()
