"""Anomaly models per sensor type: an IsolationForest on engineered features, packaged as the MLflow pyfunc
``anomaly_<sensor_type>`` that the anomaly agent (``core.anomaly.champion``) loads.

The model (:class:`AnomalyScorer`)
----------------------------------
1. Level normalisation per sensor: ``z = (value - median) / scale`` with the sensor's training median and
   ``scale = max(1.4826·MAD, floor)`` (``core.anomaly.baseline.robust_scale``); a sensor not seen in training uses
   the type's pooled training statistics.
2. Features of ``z`` by :class:`core.ml.features.SensorFeatureTransformer` (lags 1–5, rolling mean/std/min/max over
   6 and 12 readings, deviation from the rolling mean, rate of change; standard scaling fitted on the training
   split). Time of day is left out by default: the training split covers less than a day.
3. ``forest_score = -IsolationForest.score_samples(features)`` (higher = more anomalous).

Batches and warm-up: the model keeps no state, so features come from the batch itself. A reading with fewer than
``warmup`` earlier readings of its sensor in the batch (5 with the defaults) cannot have its lag/rolling features
and is scored by the level alone: ``|z|`` against ``point_threshold``. Both thresholds were chosen on the
validation split. The output ``score`` is threshold-relative so that both paths share one scale:
``forest_score / threshold`` or ``|z| / point_threshold``; ``is_anomaly`` is ``score >= 1``. The raw thresholds
and the feature list are attributes of the model (and of the registered version's tags and params).

``predict`` input: DataFrame ``sensor_id`` (str), ``timestamp`` (datetime64[ns, UTC]), ``value`` (float64),
sorted by sensor then time (any order works; the output follows the input rows). Output: DataFrame ``score``
(float64), ``is_anomaly`` (bool), same length and order.

Loading the pickled model needs this project on the Python path (the agent and the API run inside it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.ensemble import IsolationForest

from core.anomaly.baseline import robust_scale
from core.ml.features import SensorFeatureTransformer

FAMILY = "anomaly"
MODEL_PREFIX = "anomaly_"
INPUT_COLUMNS: tuple[str, ...] = ("sensor_id", "timestamp", "value")
OUTPUT_COLUMNS: tuple[str, ...] = ("score", "is_anomaly")


def model_name(sensor_type: str) -> str:
    return f"{MODEL_PREFIX}{sensor_type}"


def sensor_type_of(name: str) -> str:
    if not name.startswith(MODEL_PREFIX):
        raise ValueError(f"{name!r} is not an anomaly model name ({MODEL_PREFIX}<sensor_type>)")
    return name[len(MODEL_PREFIX) :]


def isolation_scores(forest: IsolationForest, features: np.ndarray) -> NDArray[np.float64]:
    """``forest.score_samples(features)`` computed in one loop over the trees.

    scikit-learn dispatches every tree through joblib (about 0.1 ms each: 20 ms of a 200-tree forest's scoring of
    a 10-reading request); the per-tree work — ``tree.apply`` and two table look-ups — is the same here, so the
    scores are identical (tests/ml/test_anomaly_models.py compares them)."""
    from sklearn.ensemble._iforest import _average_path_length

    x = np.ascontiguousarray(features, dtype=np.float32)  # the trees' dtype, as score_samples validates it
    subsample = forest._max_features != x.shape[1]
    depths = np.zeros(x.shape[0])
    for tree, columns, path_lengths, average_lengths in zip(
        forest.estimators_,
        forest.estimators_features_,
        forest._decision_path_lengths,
        forest._average_path_length_per_tree,
        strict=True,
    ):
        leaves = tree.apply(x[:, columns] if subsample else x, check_input=False)
        depths += path_lengths[leaves] + average_lengths[leaves] - 1.0
    denominator = len(forest.estimators_) * _average_path_length([forest._max_samples])[0]
    # score_samples is the opposite of the paper's anomaly score 2^(-E[h(x)] / c(n))
    scores: NDArray[np.float64] = -(
        2 ** (-np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0))
    )
    return scores


@dataclass(frozen=True)
class FeatureConfig:
    lags: int = 5
    windows: tuple[int, ...] = (6, 12)
    rate_of_change: bool = True
    time_of_day: bool = False
    deviation: bool = True
    scaler: str = "standard"

    def transformer(self) -> SensorFeatureTransformer:
        return SensorFeatureTransformer(
            lags=self.lags,
            windows=self.windows,
            rate_of_change=self.rate_of_change,
            time_of_day=self.time_of_day,
            deviation=self.deviation,
            scaler=self.scaler,
        )


def _input_frame(frame: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"anomaly model input lacks columns {missing}")
    return pd.DataFrame(
        {
            "sensor_id": frame["sensor_id"].astype(str).to_numpy(),
            "timestamp": pd.DatetimeIndex(pd.to_datetime(frame["timestamp"], utc=True)),
            "value": pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=float),
        }
    )


@dataclass
class AnomalyScorer:
    """A fitted anomaly model of one sensor type (see the module docstring)."""

    sensor_type: str
    transformer: SensorFeatureTransformer
    forest: IsolationForest
    threshold: float
    point_threshold: float
    sensor_stats: dict[str, tuple[float, float]]
    type_stats: tuple[float, float]
    feature_config: FeatureConfig = field(default_factory=FeatureConfig)

    @property
    def feature_names(self) -> list[str]:
        return [str(n) for n in self.transformer.get_feature_names_out()]

    @property
    def warmup(self) -> int:
        return self.transformer.warmup_rows

    # --- pieces ------------------------------------------------------------------------------------------------
    def normalise(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (input columns) with ``value`` replaced by the per-sensor robust z."""
        data = _input_frame(frame)
        stats = pd.DataFrame.from_dict(self.sensor_stats, orient="index", columns=["median", "scale"])
        median = data["sensor_id"].map(stats["median"]).fillna(self.type_stats[0]).to_numpy(dtype=float)
        scale = data["sensor_id"].map(stats["scale"]).fillna(self.type_stats[1]).to_numpy(dtype=float)
        return data.assign(value=(data["value"].to_numpy() - median) / scale)

    def features(self, frame: pd.DataFrame) -> np.ndarray:
        return self.transformer.transform(self.normalise(frame))

    def forest_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw IsolationForest scores (higher = more anomalous) with features from ``frame`` itself."""
        if len(frame) == 0:
            return np.zeros(0)
        return -isolation_scores(self.forest, self.features(frame))

    def point_scores(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        """``|z|`` of each reading against its sensor's training level (no history needed)."""
        z: NDArray[np.float64] = self.normalise(frame)["value"].to_numpy(dtype=float)
        return np.abs(z)

    def warming_up(self, frame: pd.DataFrame) -> np.ndarray:
        """True for readings with fewer than ``warmup`` earlier readings of their sensor in ``frame``."""
        data = _input_frame(frame).assign(_pos=np.arange(len(frame)))
        data = data.sort_values(["sensor_id", "timestamp", "_pos"], kind="stable")
        rank = data.groupby("sensor_id", sort=False).cumcount().to_numpy()
        out = np.empty(len(frame), dtype=bool)
        out[data["_pos"].to_numpy()] = rank < self.warmup
        return out

    # --- the contract ------------------------------------------------------------------------------------------
    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        if len(frame) == 0:
            return pd.DataFrame({"score": pd.Series(dtype="float64"), "is_anomaly": pd.Series(dtype=bool)})
        forest = self.forest_scores(frame) / self.threshold
        point = np.nan_to_num(self.point_scores(frame), nan=0.0) / self.point_threshold
        score = np.where(self.warming_up(frame), point, forest).astype("float64")
        return pd.DataFrame({"score": score, "is_anomaly": score >= 1.0})

    def metadata(self) -> dict[str, Any]:
        return {
            "sensor_type": self.sensor_type,
            "feature_names": self.feature_names,
            "threshold": float(self.threshold),
            "point_threshold": float(self.point_threshold),
            "warmup": int(self.warmup),
            "score": "threshold-relative: forest_score/threshold, or |z|/point_threshold during warm-up; "
            "is_anomaly = score >= 1",
        }


def fit_scorer(
    sensor_type: str,
    train: pd.DataFrame,
    *,
    feature_config: FeatureConfig | None = None,
    n_estimators: int = 200,
    max_samples: int | str = "auto",
    max_train_rows: int | None = None,
    random_state: int = 0,
) -> AnomalyScorer:
    """Fit the level statistics, the feature scaler and the forest on ``train`` (input columns; normal data).
    Thresholds are set to 1.0 here; :func:`core.ml.anomaly.training.train_type` sets them from validation."""
    feature_config = feature_config or FeatureConfig()
    data = _input_frame(train).dropna(subset=["value"])
    if data.empty:
        raise ValueError(f"no training readings for {sensor_type}")
    sensor_stats = {
        str(sensor): robust_scale(group.to_numpy(dtype=float))
        for sensor, group in data.groupby("sensor_id")["value"]
    }
    scales = np.array([s for _, s in sensor_stats.values()])
    type_stats = (float(np.median(data["value"])), float(np.median(scales)))
    scorer = AnomalyScorer(
        sensor_type=sensor_type,
        transformer=feature_config.transformer(),
        forest=IsolationForest(
            n_estimators=n_estimators,
            max_samples=max_samples,
            contamination="auto",
            random_state=random_state,
        ),
        threshold=1.0,
        point_threshold=1.0,
        sensor_stats=sensor_stats,
        type_stats=type_stats,
        feature_config=feature_config,
    )
    normalised = scorer.normalise(train)
    scorer.transformer.fit(normalised)
    features = scorer.transformer.transform(normalised)
    if max_train_rows is not None and len(features) > max_train_rows:
        rows = np.random.default_rng(random_state).choice(len(features), size=max_train_rows, replace=False)
        features = features[np.sort(rows)]
    scorer.forest.fit(features)
    return scorer


# --- MLflow pyfunc ---------------------------------------------------------------------------------------------
def pyfunc_model(scorer: AnomalyScorer) -> Any:
    """The ``mlflow.pyfunc.PythonModel`` wrapping ``scorer``."""
    from core.ml.anomaly.pyfunc import AnomalyPyFunc

    return AnomalyPyFunc(scorer)


__all__ = [
    "FAMILY",
    "INPUT_COLUMNS",
    "MODEL_PREFIX",
    "OUTPUT_COLUMNS",
    "AnomalyScorer",
    "FeatureConfig",
    "fit_scorer",
    "model_name",
    "pyfunc_model",
    "sensor_type_of",
]
