"""Promotion evidence of the IMS detectors (core.ml.vibration.promotion): Youden's J on a held-out healthy
recording and the same recording with a simulated outer-race defect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.ml.vibration.bearings import IMS_RPM, REXNORD_ZA_2115
from core.ml.vibration.features import envelope_spectrum, window_features
from core.ml.vibration.models import train_detector
from core.ml.vibration.promotion import (
    DEFECT_RELATIVE_SEVERITY,
    add_outer_race_defect,
    build_evidence,
    heldout_ims_path,
    youden,
)
from core.ml.vibration.readers import IMS_FS, read_ims_file
from core.ml.vibration.simulator import simulate_signal
from core.ml.vibration.tracking import VibrationPyFunc


def _healthy(seed: int, n_samples: int = 8192) -> np.ndarray:
    """Two simulated healthy channels of different loudness."""
    return np.column_stack(
        [
            scale * simulate_signal("none", fs=IMS_FS, rpm=IMS_RPM, geometry=REXNORD_ZA_2115, n_samples=n_samples,
                                    rng=[seed, ch])
            for ch, scale in enumerate((1.0, 3.0))
        ]
    )  # fmt: skip


class Loaded:
    """The PyFuncModel call shape (``predict(frame)``) around a detector's pyfunc."""

    def __init__(self, detector: object) -> None:
        self.inner = VibrationPyFunc(detector)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.inner.predict(None, frame)


class Constant:
    """A 'detector' that flags every window or none."""

    def __init__(self, flag: bool) -> None:
        self.flag = flag

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"score": np.zeros(len(frame)), "is_anomaly": np.full(len(frame), self.flag)})


def test_defect_is_scaled_per_channel_deterministic_and_rings_at_bpfo() -> None:
    x = _healthy(1, 20_480)
    y = add_outer_race_defect(x)
    np.testing.assert_array_equal(y, add_outer_race_defect(x))  # fixed seeds
    assert not np.array_equal(y, add_outer_race_defect(x, seed=7))
    added = y - x
    # peak impact amplitude ∝ each channel's RMS: the added RMS is the same share of both channels' level
    ratio = added.std(axis=0) / x.std(axis=0)
    assert ratio[0] == pytest.approx(ratio[1], rel=0.05)
    assert 0.3 < ratio[0] < 0.8
    freqs, env = envelope_spectrum(added[:, 0], IMS_FS)
    bpfo = REXNORD_ZA_2115.frequencies(IMS_RPM)["bpfo"]
    in_band = (freqs > 50) & (freqs < 1000)
    assert abs(freqs[in_band][np.argmax(env[in_band])] - bpfo) < 2.0
    # the defect shows in the envelope energy at BPFO of the damaged recording's windows
    h = window_features(x, IMS_FS, REXNORD_ZA_2115, IMS_RPM)
    d = window_features(y, IMS_FS, REXNORD_ZA_2115, IMS_RPM)
    assert (d["env_bpfo"].to_numpy() > 5 * h["env_bpfo"].to_numpy()).all()


@pytest.fixture(scope="module")
def simulated() -> dict[str, object]:
    train = pd.concat(
        [window_features(_healthy(s), IMS_FS, REXNORD_ZA_2115, IMS_RPM) for s in range(10)], ignore_index=True
    )
    evidence = build_evidence([_healthy(s) for s in range(100, 103)])
    return {"train": train, "evidence": evidence}


def test_constant_detectors_score_zero(simulated: dict[str, object]) -> None:
    evidence = simulated["evidence"]
    assert youden(Constant(False), evidence) == {"tpr": 0.0, "fpr": 0.0, "youden_j": 0.0}
    assert youden(Constant(True), evidence) == {"tpr": 1.0, "fpr": 1.0, "youden_j": 0.0}


def test_trained_detector_scores_positive_and_beats_a_silenced_copy(simulated: dict[str, object]) -> None:
    det = train_detector("one_class_svm", simulated["train"])
    result = youden(Loaded(det), simulated["evidence"])
    assert result["youden_j"] == pytest.approx(result["tpr"] - result["fpr"])
    assert result["youden_j"] > 0.3
    det.threshold = float("inf")  # never flags: best false-alarm rate, no detection
    assert youden(Loaded(det), simulated["evidence"])["youden_j"] == 0.0


def test_evidence_severity_moves_tpr(simulated: dict[str, object]) -> None:
    det = train_detector("one_class_svm", simulated["train"])
    recs = [_healthy(s) for s in range(100, 103)]
    weak = youden(Loaded(det), build_evidence(recs, relative_severity=0.2))
    default = youden(Loaded(det), simulated["evidence"])
    assert weak["fpr"] == default["fpr"]  # same healthy windows
    assert weak["tpr"] < default["tpr"]
    assert DEFECT_RELATIVE_SEVERITY == 2.5


@pytest.mark.skipif(not heldout_ims_path().is_file(), reason="no held-out IMS file")
def test_family_evaluator_on_the_real_heldout_ims_file() -> None:
    from core.ml.vibration.tracking import PROMOTION_METRIC, evaluate_for_promotion

    assert PROMOTION_METRIC == ("heldout_youden_j", True)
    before = heldout_ims_path().parent / "2004.02.12.10.32.39"  # the file notebook 06 trains on
    train = window_features(read_ims_file(before), IMS_FS, REXNORD_ZA_2115, IMS_RPM)
    svm = train_detector("one_class_svm", train)
    j = evaluate_for_promotion(Loaded(svm), "vibration_ims_one_class_svm")
    assert 0.2 < j < 0.95  # detects part of the moderate simulated defect, not saturated
    assert evaluate_for_promotion(Loaded(svm), "vibration_ims_one_class_svm") == j  # deterministic
    assert evaluate_for_promotion(Constant(False), "vibration_ims_one_class_svm") == 0.0
    assert evaluate_for_promotion(Constant(True), "vibration_ims_one_class_svm") == 0.0
    # a detector trained on simulated healthy windows flags most real windows, damaged or not: no evidence
    simulated = train_detector("isolation_forest", window_features(_healthy(0, 20_480), IMS_FS, REXNORD_ZA_2115,
                                                                    IMS_RPM))  # fmt: skip
    assert evaluate_for_promotion(Loaded(simulated), "vibration_ims_isolation_forest") < j
