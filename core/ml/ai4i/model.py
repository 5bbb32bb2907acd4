"""The registered classifier ``ai4i_failure_classifier`` and its promotion evaluator.

pyfunc contract (docs ml_contracts): ``predict(DataFrame[Type, Air temperature [K], Process temperature [K],
Rotational speed [rpm], Torque [Nm], Tool wear [min]])`` → ``DataFrame[failure_probability, failure_predicted,
closest_limit, closest_limit_margin]`` in the input order. Signature: Type string, temperatures and torque double,
speed and tool wear long (integers, as in the UCI file).

* ``failure_probability`` — the model's class-1 probability (for an SVC champion, the logistic of its decision
  function: a monotone score in [0, 1], not calibrated);
* ``failure_predicted`` — probability ≥ the model's threshold, chosen on its own training rows only
  (:func:`core.ml.ai4i.evaluation.fit_with_threshold`);
* ``closest_limit`` / ``closest_limit_margin`` — the published physical limit closest to being crossed
  (heat_dissipation, power_band, overstrain, tool_wear_window) and its signed margin as a fraction of the limit
  (≤ 0: crossed), from :func:`core.ml.ai4i.features.closest_limit`. Rows are independent.

Promotion: :data:`PROMOTION_METRIC` = ("f1", True). :func:`evaluate_for_promotion` scores a loaded model by the
failure-class F1 on a fixed held-out split — :func:`holdout_split`: ``StratifiedShuffleSplit(test_size=0.2,
random_state=2020)`` of the real file (2,000 rows, 68 failures), or of ``generate_ai4i(10_000, seed=2020)`` when
the file is absent. The registered model is fit on the other 80 % (the development part) so that this F1 is out of
sample for every version trained by the gauntlet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel
from numpy.typing import NDArray
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedShuffleSplit

from core.ml.ai4i.data import (
    AIR,
    INPUT_COLUMNS,
    PROCESS,
    SPEED,
    TARGET,
    TORQUE,
    TYPE,
    WEAR,
    default_path,
    load_ai4i,
)
from core.ml.ai4i.evaluation import scores
from core.ml.ai4i.features import build_features, closest_limit

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

MODEL_NAME = "ai4i_failure_classifier"
PROMOTION_METRIC: tuple[str, bool] = ("f1", True)
HOLDOUT_FRACTION = 0.2
HOLDOUT_SEED = 2020
OUTPUT_COLUMNS = ("failure_probability", "failure_predicted", "closest_limit", "closest_limit_margin")


class Ai4iFailureClassifier(PythonModel):
    """A fitted estimator, its feature set and its decision threshold (in score space)."""

    def __init__(self, estimator: Any, feature_set: str, threshold: float, model_kind: str) -> None:
        self.estimator = estimator
        self.feature_set = feature_set
        self.threshold = float(threshold)
        self.model_kind = model_kind

    def _probability(self, score: NDArray[np.float64]) -> NDArray[np.float64]:
        if hasattr(self.estimator, "predict_proba"):
            return score
        return 1.0 / (1.0 + np.exp(-score))

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"missing input columns: {missing}")
        inputs = frame[list(INPUT_COLUMNS)].reset_index(drop=True)
        score = scores(self.estimator, build_features(inputs, self.feature_set))  # type: ignore[arg-type]
        limits = closest_limit(inputs)
        return pd.DataFrame(
            {
                "failure_probability": self._probability(score).astype(np.float64),
                "failure_predicted": score >= self.threshold,
                "closest_limit": limits["closest_limit"].astype(str),
                "closest_limit_margin": limits["closest_limit_margin"].astype(np.float64),
            }
        )

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.predict_frame(pd.DataFrame(model_input))


def serving_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """The six input columns with the serving dtypes: Type string, temperatures and torque double, speed and tool
    wear long (integers, as in the UCI file; MLflow refuses to cast int64 to double implicitly, and JSON clients
    send these two as integers)."""
    example = frame[list(INPUT_COLUMNS)].reset_index(drop=True).copy()
    example[TYPE] = example[TYPE].astype(str).astype(object)
    for column in (AIR, PROCESS, TORQUE):
        example[column] = example[column].astype(np.float64)
    for column in (SPEED, WEAR):
        example[column] = np.round(example[column].astype(np.float64)).astype(np.int64)
    return example


def input_example(frame: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    return serving_inputs(frame.head(n))


def signature(model: Ai4iFailureClassifier, example: pd.DataFrame) -> Any:
    from mlflow.models import infer_signature

    return infer_signature(example, model.predict_frame(example))


def holdout_split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(development, held-out): the fixed stratified 80/20 split used by promotion."""
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=HOLDOUT_FRACTION, random_state=HOLDOUT_SEED)
    dev_idx, held_idx = next(splitter.split(np.zeros(len(frame)), frame[TARGET].astype(int)))
    return frame.iloc[dev_idx].reset_index(drop=True), frame.iloc[held_idx].reset_index(drop=True)


def f1_on(model: PyFuncModel | Ai4iFailureClassifier, frame: pd.DataFrame) -> float:
    """Failure-class F1 of ``model`` (a loaded pyfunc or the python model) on ``frame``."""
    inputs = serving_inputs(frame)
    out = model.predict_frame(inputs) if isinstance(model, Ai4iFailureClassifier) else model.predict(inputs)
    predicted = np.asarray(out["failure_predicted"]).astype(int)
    return float(f1_score(frame[TARGET].astype(int), predicted, zero_division=0))


def promotion_data() -> pd.DataFrame:
    """The held-out part of the real file (or of the seeded generator when the file is absent)."""
    if default_path().is_file():
        frame = load_ai4i(default_path())
    else:
        from core.ml.ai4i.generator import generate_ai4i

        frame = generate_ai4i(10_000, seed=HOLDOUT_SEED)
    return holdout_split(frame)[1]


def evaluate_for_promotion(model: PyFuncModel, model_name: str = MODEL_NAME) -> float:
    """Registry evaluator (core.ml.registry.promotion): the F1 on :func:`promotion_data` (higher is better)."""
    return f1_on(model, promotion_data())


def pip_requirements() -> list[str]:
    """The model's runtime packages pinned to the installed versions (skips MLflow's slow requirement inference,
    which re-loads the model in a subprocess). Loading also needs this project's ``core`` package importable."""
    from importlib.metadata import version

    return [
        f"{name}=={version(name)}"
        for name in ("mlflow", "scikit-learn", "lightgbm", "pandas", "numpy", "cloudpickle")
    ]


def log_and_register(
    model: Ai4iFailureClassifier,
    example: pd.DataFrame,
    *,
    model_name: str = MODEL_NAME,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Log the pyfunc in the active MLflow run (metrics + tags on that run), register it, return the version."""
    import mlflow

    if metrics:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
    mlflow.set_tags({"sm.family": "classifier", "sm.model_kind": model.model_kind, **(tags or {})})
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=model,
        signature=signature(model, example),
        input_example=example,
        registered_model_name=model_name,
        pip_requirements=pip_requirements(),
    )
    version = info.registered_model_version
    if version is None:
        raise RuntimeError(f"{model_name} was logged but not registered")
    return str(version)
