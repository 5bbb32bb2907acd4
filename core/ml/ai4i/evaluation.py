"""Model factory, thresholds chosen inside the training data, and repeated stratified cross-validation.

Protocol (issue 6 §1): ``RepeatedStratifiedKFold(n_splits=5, n_repeats=3)`` over the whole table. In every outer
fold the model and its **decision threshold** are chosen from the training part only (:func:`fit_with_threshold`):

* RandomForest — the out-of-bag probabilities of the training rows (each row scored by trees that did not see it);
* SVC, LightGBM — out-of-fold scores of an inner ``StratifiedKFold(inner_splits)`` on the training part, then a
  refit on the whole training part.

The threshold maximises the failure-class F1 on those training-part scores and is then applied, unchanged, to the
test fold. Metrics per test fold: accuracy, precision / recall / F1 of the failure class, ROC-AUC and PR-AUC
(average precision) of the score. :func:`rules_reference` scores the published limits on the same folds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold

from core.ml.ai4i.data import TARGET
from core.ml.ai4i.features import FeatureSet, build_features, failure_rules

MODELS = ("random_forest", "svc", "lightgbm")
METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc", "pr_auc")
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "random_forest": {"n_estimators": 300, "min_samples_leaf": 1, "max_features": "sqrt"},
    "svc": {"C": 10.0, "gamma": "scale"},
    "lightgbm": {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 10},
}


def make_model(name: str, seed: int = 0, **overrides: Any) -> Any:
    """An unfitted estimator (single-threaded: the machine is shared)."""
    params = DEFAULT_PARAMS[name] | overrides
    if name == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(oob_score=True, n_jobs=1, random_state=seed, **params)
    if name == "svc":
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        return make_pipeline(StandardScaler(), SVC(kernel="rbf", random_state=seed, **params))
    if name == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(random_state=seed, n_jobs=1, verbose=-1, **params)
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


def scores(estimator: Any, features: pd.DataFrame) -> np.ndarray:
    """Failure score: the class-1 probability, or the SVC decision function."""
    if hasattr(estimator, "predict_proba"):
        return np.asarray(estimator.predict_proba(features))[:, 1]
    return np.asarray(estimator.decision_function(features), dtype=float)


def choose_threshold(y: pd.Series, score: np.ndarray) -> float:
    """The score threshold (predict failure when score ≥ threshold) with the best F1 on (y, score)."""
    y_arr = np.asarray(y)
    if y_arr.sum() == 0:
        return float(np.inf)
    precision, recall, thresholds = precision_recall_curve(y_arr, score)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def training_scores(
    estimator: Any, features: pd.DataFrame, y: pd.Series, inner_splits: int, seed: int
) -> NDArray[np.float64]:
    """Scores of the training rows by models that did not see them (OOB or inner out-of-fold)."""
    oob = getattr(estimator, "oob_decision_function_", None)
    if oob is not None:
        positive: NDArray[np.float64] = np.nan_to_num(np.asarray(oob)[:, 1], nan=0.0)
        return positive
    out = np.zeros(len(y))
    inner = StratifiedKFold(n_splits=inner_splits, shuffle=True, random_state=seed)
    for fit_idx, score_idx in inner.split(features, y):
        model = clone(estimator).fit(features.iloc[fit_idx], y.iloc[fit_idx])
        out[score_idx] = scores(model, features.iloc[score_idx])
    return out


def fit_with_threshold(
    model_name: str,
    features: pd.DataFrame,
    y: pd.Series,
    *,
    seed: int = 0,
    inner_splits: int = 3,
    **params: Any,
) -> tuple[Any, float]:
    """Fit ``model_name`` on (features, y) and choose its threshold from these rows only."""
    estimator = make_model(model_name, seed=seed, **params).fit(features, y)
    threshold = choose_threshold(y, training_scores(estimator, features, y, inner_splits, seed))
    return estimator, threshold


def fold_metrics(y: np.ndarray | pd.Series, score: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    y_arr = np.asarray(y).astype(int)
    predicted = np.asarray(predicted).astype(int)
    both = len(np.unique(y_arr)) == 2
    return {
        "accuracy": float(accuracy_score(y_arr, predicted)),
        "f1": float(f1_score(y_arr, predicted, zero_division=0)),
        "precision": float(precision_score(y_arr, predicted, zero_division=0)),
        "recall": float(recall_score(y_arr, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_arr, score)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y_arr, score)) if both else float("nan"),
    }


@dataclass
class CvResult:
    model: str
    feature_set: str
    folds: pd.DataFrame  # one row per (repeat, fold): metrics + threshold
    oof_score: np.ndarray  # (n_repeats, n_rows) test-fold scores
    oof_predicted: np.ndarray  # (n_repeats, n_rows) test-fold decisions
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.model}__{self.feature_set}"

    def mean(self) -> dict[str, float]:
        return {m: float(self.folds[m].mean()) for m in (*METRICS, "threshold")}

    def std(self) -> dict[str, float]:
        return {m: float(self.folds[m].std(ddof=1)) if len(self.folds) > 1 else 0.0 for m in METRICS}


def splits(
    y: pd.Series, n_splits: int, n_repeats: int, seed: int
) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    cv = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    return [
        (i // n_splits, i % n_splits, train, test)
        for i, (train, test) in enumerate(cv.split(np.zeros(len(y)), y))
    ]


def cross_validate(
    frame: pd.DataFrame,
    model_name: str,
    feature_set: FeatureSet,
    *,
    n_splits: int = 5,
    n_repeats: int = 3,
    seed: int = 0,
    inner_splits: int = 3,
    params: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    fitter: Callable[..., tuple[Any, float]] = fit_with_threshold,
) -> CvResult:
    """Repeated stratified CV of one model on one feature set, thresholds chosen inside each training part."""
    features = build_features(frame, feature_set)
    y = frame[TARGET].astype(int)
    params = dict(params or {})
    n = len(frame)
    oof_score = np.full((n_repeats, n), np.nan)
    oof_pred = np.zeros((n_repeats, n), dtype=int)
    rows = []
    for repeat, fold, train, test in splits(y, n_splits, n_repeats, seed):
        estimator, threshold = fitter(
            model_name,
            features.iloc[train],
            y.iloc[train],
            seed=seed + repeat,
            inner_splits=inner_splits,
            **params,
        )
        test_score = scores(estimator, features.iloc[test])
        predicted = (test_score >= threshold).astype(int)
        oof_score[repeat, test] = test_score
        oof_pred[repeat, test] = predicted
        rows.append(
            {
                "repeat": repeat,
                "fold": fold,
                "threshold": threshold,
                **fold_metrics(y.iloc[test], test_score, predicted),
            }
        )
        if progress is not None:
            progress(1)
    return CvResult(model_name, feature_set, pd.DataFrame(rows), oof_score, oof_pred, params)


def rules_reference(
    frame: pd.DataFrame, *, n_splits: int = 5, n_repeats: int = 3, seed: int = 0
) -> pd.DataFrame:
    """The published HDF/PWF/OSF limits scored on the same test folds (nothing is trained)."""
    y = frame[TARGET].astype(int)
    rule = failure_rules(frame)["any"].astype(int).to_numpy()
    rows = [
        {"repeat": repeat, "fold": fold, **fold_metrics(y.iloc[test], rule[test].astype(float), rule[test])}
        for repeat, fold, _train, test in splits(y, n_splits, n_repeats, seed)
    ]
    return pd.DataFrame(rows)
