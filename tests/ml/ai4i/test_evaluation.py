"""Thresholds are chosen from the training part of each fold only; CV metrics are the test folds'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.ml.ai4i import evaluation
from core.ml.ai4i.data import TARGET
from core.ml.ai4i.evaluation import (
    choose_threshold,
    cross_validate,
    fit_with_threshold,
    rules_reference,
    splits,
)
from core.ml.ai4i.features import build_features

SMALL = {"random_forest": {"n_estimators": 25}, "lightgbm": {"n_estimators": 30}, "svc": {}}


def test_choose_threshold_maximises_f1() -> None:
    y = pd.Series([0, 0, 0, 0, 1, 1, 0, 1])
    score = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.8, 0.5, 0.9])
    # score ≥ 0.4 → TP 3, FP 1 (F1 0.857); ≥ 0.8 → TP 2, FP 0 (F1 0.8); ≥ 0.5 → TP 2, FP 1 (0.667)
    assert choose_threshold(y, score) == pytest.approx(0.4)
    assert choose_threshold(pd.Series([0, 0]), np.array([0.1, 0.2])) == np.inf


@pytest.mark.heavy_ml
@pytest.mark.parametrize("model", ["random_forest", "lightgbm", "svc"])
def test_threshold_sees_only_the_training_rows_of_each_fold(
    generated_ai4i: pd.DataFrame, model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = generated_ai4i.iloc[:1200]
    seen: list[set[int]] = []
    original = evaluation.choose_threshold

    def recording(y: pd.Series, score: np.ndarray) -> float:
        seen.append(set(y.index))
        return original(y, score)

    monkeypatch.setattr(evaluation, "choose_threshold", recording)
    result = cross_validate(
        frame, model, "engineered", n_splits=3, n_repeats=1, inner_splits=2, params=SMALL[model]
    )
    folds = splits(frame[TARGET], 3, 1, 0)
    assert len(seen) == len(folds) == len(result.folds)
    for rows, (_repeat, _fold, train, test) in zip(seen, folds, strict=True):
        assert rows == set(frame.index[train])
        assert rows.isdisjoint(frame.index[test])


@pytest.mark.heavy_ml
def test_test_fold_labels_do_not_move_the_threshold(generated_ai4i: pd.DataFrame) -> None:
    """Each fold's threshold equals the one chosen by fitting on that fold's training rows alone."""
    frame = generated_ai4i.iloc[:1200].reset_index(drop=True)
    folds = splits(frame[TARGET], 3, 1, 0)
    result = cross_validate(
        frame, "lightgbm", "engineered", n_splits=3, n_repeats=1, inner_splits=2, params=SMALL["lightgbm"]
    )
    features = build_features(frame, "engineered")
    for i, (_repeat, _fold, train, _test) in enumerate(folds):
        _, alone = fit_with_threshold(
            "lightgbm",
            features.iloc[train],
            frame[TARGET].iloc[train],
            seed=0,
            inner_splits=2,
            **SMALL["lightgbm"],
        )
        assert result.folds.loc[i, "threshold"] == pytest.approx(alone)


def test_rules_reference_scores_the_published_limits_per_fold(real_ai4i: pd.DataFrame) -> None:
    rules = rules_reference(real_ai4i, n_splits=5, n_repeats=1)
    assert len(rules) == 5
    assert rules["precision"].min() == 1.0  # every rule hit is a recorded failure in the real file
    assert 0.88 < rules["f1"].mean() < 0.95  # ≈ 0.917: TWF/RNF and 9 unflagged failures are out of reach
