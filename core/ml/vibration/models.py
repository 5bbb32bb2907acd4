"""Unsupervised detectors on the per-window feature table, trained on the healthy start of a run.

Pipeline: log10 of the positive, scale-like features (RMS, peak-to-peak, high-frequency and envelope energies
span decades as damage grows) → StandardScaler → IsolationForest or OneClassSVM. The score is "higher = more
anomalous": ``−score_samples`` for the IsolationForest, ``−decision_function`` for the OneClassSVM. The
model's alarm threshold for single windows is the 99th percentile of its training scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import OneClassSVM

from core.ml.vibration.features import ENVELOPE_FEATURES, FEATURE_COLUMNS

MODEL_KINDS = ("isolation_forest", "one_class_svm")
LOG_FEATURES = ("rms", "peak_to_peak", "hf_energy", *ENVELOPE_FEATURES)
_LOG_POSITIONS = tuple(FEATURE_COLUMNS.index(c) for c in LOG_FEATURES)


def log_scale(x: np.ndarray) -> np.ndarray:
    """log10 of the scale-like columns (positions of :data:`LOG_FEATURES` in :data:`FEATURE_COLUMNS`)."""
    out = np.array(x, dtype=float, copy=True)
    cols = list(_LOG_POSITIONS)
    out[:, cols] = np.log10(np.maximum(out[:, cols], 1e-12))
    return out


def make_detector(
    kind: str, *, random_state: int = 0, nu: float = 0.05, gamma: float = 0.01, n_estimators: int = 200
) -> Pipeline:
    """``gamma`` of the OneClassSVM's RBF kernel on the standardised features: 0.01, chosen on simulated healthy
    runs (seeds 500–709, not used by any test or report figure) — sklearn's "scale" (1/12 here) drew the boundary
    so tightly around a few dozen training windows that half of unseen healthy windows fell outside it."""
    if kind == "isolation_forest":
        estimator = IsolationForest(n_estimators=n_estimators, random_state=random_state)
    elif kind == "one_class_svm":
        estimator = OneClassSVM(nu=nu, gamma=gamma)
    else:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")
    return Pipeline(
        [("log", FunctionTransformer(log_scale)), ("scale", StandardScaler()), ("model", estimator)]
    )


@dataclass
class VibrationDetector:
    """A fitted detector: ``score(features)`` → anomaly score per row (higher = more anomalous)."""

    kind: str
    pipeline: Pipeline
    feature_columns: tuple[str, ...] = FEATURE_COLUMNS
    threshold: float = float("nan")
    train_rows: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    def score(self, features: pd.DataFrame) -> NDArray[np.float64]:
        missing = [c for c in self.feature_columns if c not in features.columns]
        if missing:
            raise ValueError(f"feature table lacks columns {missing}")
        x = features.loc[:, list(self.feature_columns)].to_numpy(dtype=float)
        model = self.pipeline
        if self.kind == "isolation_forest":
            normality: NDArray[np.float64] = model.score_samples(x)
        else:
            normality = model.decision_function(x)
        return -normality


def train_detector(
    kind: str, healthy_features: pd.DataFrame, *, random_state: int = 0, **params: Any
) -> VibrationDetector:
    """Fit a detector on healthy windows (only the feature columns are used; no labels exist or are read)."""
    x = healthy_features.loc[:, list(FEATURE_COLUMNS)].to_numpy(dtype=float)
    if len(x) < 10:
        raise ValueError(f"need at least 10 healthy windows to train, got {len(x)}")
    pipeline = make_detector(kind, random_state=random_state, **params).fit(x)
    detector = VibrationDetector(kind, pipeline, FEATURE_COLUMNS, train_rows=len(x), params=dict(params))
    detector.threshold = float(np.percentile(detector.score(healthy_features), 99))
    return detector
