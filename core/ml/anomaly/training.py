"""Training, evaluation, MLflow logging, registration and promotion of the ``anomaly_<sensor_type>`` models.

:func:`train_type` fits one sensor type on the train split (the early part of the data; labels are not used for
fitting), chooses the IsolationForest threshold, the warm-up ``|z|`` threshold and the ``robust_z`` baseline's
threshold on the validation split (``core.ml.anomaly.evaluation.choose_threshold``) and reports test-split metrics for

* ``iforest``: the registered model scoring the whole series (earlier readings are history), as offline;
* ``iforest_single``: the same model fed one reading at a time (every reading is a warm-up reading: the level
  path only), i.e. what the agent gets from events of one reading per sensor;
* ``baseline``: the agent's streaming ``robust_z`` (window 288, warm-up 30), threshold chosen on validation too.

MLflow logging, registration and promotion: :mod:`core.ml.anomaly.run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.anomaly.baseline import BaselineConfig
from core.ml.anomaly import evaluation as ev
from core.ml.anomaly.models import (
    INPUT_COLUMNS,
    AnomalyScorer,
    FeatureConfig,
    fit_scorer,
)

DEFAULT_EXPERIMENT = "anomaly"
METHODS = ("iforest", "iforest_single", "baseline")


@dataclass(frozen=True)
class TrainConfig:
    n_estimators: int = 200
    max_samples: int | str = "auto"
    max_train_rows: int | None = None
    train_fraction: float = 0.4
    val_fraction: float = 0.2
    alarm_rate: float = 0.01
    random_state: int = 0
    features: FeatureConfig = field(default_factory=FeatureConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    def params(self) -> dict[str, Any]:
        f = self.features
        return {
            "n_estimators": self.n_estimators,
            "max_samples": self.max_samples,
            "max_train_rows": self.max_train_rows,
            "train_fraction": self.train_fraction,
            "val_fraction": self.val_fraction,
            "alarm_rate": self.alarm_rate,
            "random_state": self.random_state,
            "lags": f.lags,
            "windows": ",".join(str(w) for w in f.windows),
            "rate_of_change": f.rate_of_change,
            "time_of_day": f.time_of_day,
            "scaler": f.scaler,
            "baseline_window": self.baseline.window,
            "baseline_warmup": self.baseline.warmup,
        }


@dataclass
class TypeResult:
    sensor_type: str
    scorer: AnomalyScorer
    choices: dict[str, ev.ThresholdChoice]
    metrics: dict[str, dict[str, float]]  # method -> test metrics
    scores: (
        pd.DataFrame
    )  # per reading: sensor_id, timestamp, value, split, faulty, raw and relative scores, flags
    test_faults: pd.DataFrame | None
    label_metrics: dict[str, float] | None = None
    version: str | None = None
    run_id: str | None = None
    decision: Any = None
    """The ``core.ml.registry.promotion.PromotionDecision`` (``core.ml.anomaly.run.promote``)."""


def train_type(
    sensor_type: str,
    readings: pd.DataFrame,
    faults: pd.DataFrame | None,
    cuts: ev.SplitTimes,
    config: TrainConfig | None = None,
    labels: pd.DataFrame | None = None,
) -> TypeResult:
    """Fit, choose thresholds on validation, evaluate on test (see the module docstring)."""
    from core.ml.datasets import fault_mask

    config = config or TrainConfig()
    data = (
        readings.loc[:, list(INPUT_COLUMNS)]
        .sort_values(["sensor_id", "timestamp"], kind="stable", ignore_index=True)
        .astype({"value": "float64"})
    )
    split = cuts.labels(data["timestamp"])
    faulty = fault_mask(data, faults).to_numpy()
    train, val, test = split == "train", split == "validation", split == "test"
    if not train.any() or not val.any() or not test.any():
        raise ValueError(
            f"{sensor_type}: every split needs readings (train/val/test: {train.sum()}/{val.sum()}/{test.sum()})"
        )

    scorer = fit_scorer(
        sensor_type,
        data[train],
        feature_config=config.features,
        n_estimators=config.n_estimators,
        max_samples=config.max_samples,
        max_train_rows=config.max_train_rows,
        random_state=config.random_state,
    )
    forest = scorer.forest_scores(data)
    point = scorer.point_scores(data)
    baseline, baseline_warm = ev.robust_z_scores(data, config.baseline)
    baseline = np.where(baseline_warm, 0.0, baseline)  # the agent never flags during warm-up

    choices = {
        "iforest": ev.choose_threshold(forest[val], faulty[val], alarm_rate=config.alarm_rate),
        "iforest_single": ev.choose_threshold(point[val], faulty[val], alarm_rate=config.alarm_rate),
        "baseline": ev.choose_threshold(baseline[val], faulty[val], alarm_rate=config.alarm_rate),
    }
    scorer.threshold = choices["iforest"].threshold
    scorer.point_threshold = choices["iforest_single"].threshold

    model_out = scorer.predict(data)
    flags = {
        "iforest": model_out["is_anomaly"].to_numpy(),
        "iforest_single": point / scorer.point_threshold >= 1.0,
        "baseline": baseline >= choices["baseline"].threshold,
    }
    test_faults = None
    if faults is not None:
        test_faults = faults[faults["sensor_id"].isin(data["sensor_id"].unique())]
    metrics = {
        method: ev.detection_metrics(data[test], flags[method][test], test_faults, is_faulty=faulty[test])
        for method in METHODS
    }
    scores = data.assign(
        split=split,
        faulty=faulty,
        forest_score=forest,
        point_score=point,
        baseline_score=baseline,
        score=model_out["score"].to_numpy(),
        flag_iforest=flags["iforest"],
        flag_baseline=flags["baseline"],
    )
    label_metrics = None
    if labels is not None and len(labels):
        label_metrics = ev.label_agreement(data, flags["iforest"], labels)
    return TypeResult(sensor_type, scorer, choices, metrics, scores, test_faults, label_metrics)


def summary_table(results: dict[str, TypeResult]) -> pd.DataFrame:
    rows = []
    for sensor_type, result in results.items():
        for method in METHODS:
            m = result.metrics[method]
            rows.append(
                {
                    "sensor_type": sensor_type,
                    "method": method,
                    "threshold": result.choices[method].threshold,
                    "rule": result.choices[method].rule,
                    "precision": m["precision"],
                    "recall": m["recall"],
                    "f1": m["f1"],
                    "events": f"{m['events_detected']}/{m['events']}",
                    "mean_delay_min": m["mean_delay_min"],
                    "false_alarms": m["false_alarms"],
                    "flagged": m["flagged"],
                    "faulty_readings": m["faulty_readings"],
                }
            )
    return pd.DataFrame(rows)


__all__ = [
    "DEFAULT_EXPERIMENT",
    "METHODS",
    "TrainConfig",
    "TypeResult",
    "summary_table",
    "train_type",
]
