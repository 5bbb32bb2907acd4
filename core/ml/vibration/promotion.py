"""Promotion evidence of the IMS detectors: Youden's J = TPR − FPR on one held-out healthy recording.

* FPR = share of the windows of the held-out healthy recording that the model flags (``is_anomaly``);
* TPR = share of the windows of the SAME recording, with a simulated outer-race defect added to every channel,
  that the model flags.

The defect is :func:`core.ml.vibration.simulator.defect_impacts` alone (no shaft harmonics, no noise: the real
recording brings both): impacts at the BPFO of the Rexnord ZA-2115 at 2000 rpm (236.4 Hz), ~1 % period slip,
each ringing a 5 kHz resonance (fs/4, inside the 2–8 kHz envelope band) with 0.8 ms decay. The peak impact
amplitude of channel c is :data:`DEFECT_RELATIVE_SEVERITY` × RMS of channel c (mean removed), so the defect is
equally hard on a quiet and a loud bearing. 2.5 is a moderate severity (the impacts add about 0.55 × the channel
RMS, i.e. ~30 % more signal power): measured on the real held-out file with detectors trained on the file before
it, a OneClassSVM flags 65 % of the damaged windows (5 % of the healthy ones), the IsolationForest none; at 2.0 the
OneClassSVM flags 34 %, at 4.0 all of them, so 2.5 leaves J room on both sides and still separates a better
detector from a worse one (at 10 both detectors flag ~all damaged windows and J only measures false alarms
again). Random phase and slip come from fixed seeds ``[DEFECT_SEED, recording, channel]``: the
evidence is deterministic.

J is 0 for a detector that flags nothing and for one that flags everything, and higher is better — unlike the
former false-alarm rate, which a detector that never flags anything would win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.ml.vibration.bearings import IMS_RPM, REXNORD_ZA_2115
from core.ml.vibration.features import FEATURE_COLUMNS, window_features
from core.ml.vibration.readers import IMS_FS, read_ims_file
from core.ml.vibration.simulator import defect_impacts

HELDOUT_IMS_FILE = "2004.02.12.10.42.39"
DEFECT_FAULT = "outer"
DEFECT_RELATIVE_SEVERITY = 2.5
DEFECT_SEED = 2115


@dataclass(frozen=True)
class Evidence:
    """Feature tables (``window_features``) of the held-out healthy recording(s) and of the same with the defect."""

    healthy: pd.DataFrame
    defect: pd.DataFrame


def add_outer_race_defect(
    recording: np.ndarray,
    fs: float = IMS_FS,
    *,
    relative_severity: float = DEFECT_RELATIVE_SEVERITY,
    seed: int | Sequence[int] = DEFECT_SEED,
) -> np.ndarray:
    """``recording`` (samples, channels) or 1-D plus, per channel, outer-race impacts of peak amplitude
    ``relative_severity`` × that channel's RMS (rng seed ``[*seed, channel]``)."""
    data = np.asarray(recording, dtype=float)
    two_d = data if data.ndim == 2 else data[:, None]
    base = [seed] if isinstance(seed, (int, np.integer)) else list(seed)
    out = two_d.copy()
    for ch in range(two_d.shape[1]):
        level = float(np.std(two_d[:, ch]))
        out[:, ch] += defect_impacts(
            DEFECT_FAULT,
            fs=fs,
            rpm=IMS_RPM,
            geometry=REXNORD_ZA_2115,
            n_samples=two_d.shape[0],
            severity=relative_severity * level,
            rng=np.random.default_rng([*base, ch]),
        )
    return out if data.ndim == 2 else out[:, 0]


def build_evidence(
    recordings: np.ndarray | Sequence[np.ndarray],
    fs: float = IMS_FS,
    *,
    window: int = 2048,
    overlap: float = 0.5,
    relative_severity: float = DEFECT_RELATIVE_SEVERITY,
) -> Evidence:
    """Evidence from one recording (samples, channels) or a list of them (recording i gets defect seed
    ``[DEFECT_SEED, i, channel]``)."""
    items = [recordings] if isinstance(recordings, np.ndarray) else list(recordings)
    if not items:
        raise ValueError("no held-out recording")

    def feats(x: np.ndarray) -> pd.DataFrame:
        return window_features(x, fs, REXNORD_ZA_2115, IMS_RPM, window=window, overlap=overlap)

    healthy = [feats(x) for x in items]
    defect = [
        feats(add_outer_race_defect(x, fs, relative_severity=relative_severity, seed=[DEFECT_SEED, i]))
        for i, x in enumerate(items)
    ]
    return Evidence(pd.concat(healthy, ignore_index=True), pd.concat(defect, ignore_index=True))


def flag_share(model: Any, features: pd.DataFrame) -> float:
    """Share of rows that ``model.predict(feature frame)["is_anomaly"]`` flags (the PyFuncModel call shape)."""
    flags = model.predict(features.loc[:, list(FEATURE_COLUMNS)].reset_index(drop=True))["is_anomaly"]
    return float(np.mean(np.asarray(flags, dtype=bool)))


def youden(model: Any, evidence: Evidence) -> dict[str, float]:
    """``{"tpr", "fpr", "youden_j"}`` of the model on the evidence; J = TPR − FPR."""
    fpr = flag_share(model, evidence.healthy)
    tpr = flag_share(model, evidence.defect)
    return {"tpr": tpr, "fpr": fpr, "youden_j": tpr - fpr}


def heldout_ims_path() -> Path:
    """Test 2's second file in the datasets folder, SM_DATASETS_DIR (notebook 06's detectors train on the first)."""
    from core.datasets import dataset_path

    return dataset_path(f"ims/raw/2nd_test/{HELDOUT_IMS_FILE}")


@lru_cache(maxsize=1)
def heldout_ims_evidence() -> Evidence:
    """Evidence of the held-out IMS file (computed once per process: a champion and a candidate share it).
    Raises :class:`core.datasets.DatasetMissingError` when the file is not in the datasets folder."""
    from core.datasets import DatasetMissingError, missing_message

    path = heldout_ims_path()
    if not path.is_file():
        raise DatasetMissingError(missing_message(path, "ims"))
    return build_evidence(read_ims_file(path))
