"""The RUL study (no MLflow): repeated k-fold cross-validation by engine, then the final model and its held-back
evaluation. :mod:`core.ml.rul.training` wraps it in an MLflow run.

Engines of the training file are split once into **development** engines (80 %) and **promotion** engines (20 %,
:func:`core.ml.rul.model.promotion_engines`), which nothing here trains or calibrates on. On the development
engines, ``repeats`` × ``folds`` CV: in each fold the validation engines are scored (one test-like cut each, as the
official test set), the other engines are split into training engines (the regressor) and calibration engines
(the conformal offsets, from ``calibration_cuts`` cuts each). The hyperparameters are fixed a priori (the config
below); CV only measures them. The final model is fitted on the development engines (training/calibration split
as in a fold) and scored on the promotion engines' cuts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.ml.rul.data import DEFAULT_CAP, INFORMATIVE, rul_target
from core.ml.rul.evaluation import ConformalCalibrator, cv_splits, engine_folds, scores, split_off, truncate
from core.ml.rul.features import Scaler
from core.ml.rul.model import DEFAULT_MIN_CYCLES, RulModel, predict_last, promotion_cuts, promotion_engines

METRICS: tuple[str, ...] = ("rmse", "phm08_score", "phm08_score_mean", "coverage", "mean_width", "mae", "bias")


@dataclass(frozen=True)
class RulConfig:
    cap: float = DEFAULT_CAP
    channels: tuple[str, ...] = INFORMATIVE
    mean_windows: tuple[int, ...] = (5, 20, 50)
    slope_windows: tuple[int, ...] = (20, 50, 100)
    use_cycle: bool = True
    min_cycles: int = DEFAULT_MIN_CYCLES
    alpha: float = 0.1
    bin_edges: tuple[float, ...] = (40.0, 80.0)
    folds: int = 5
    repeats: int = 2
    calibration: str = "split"
    """"split": offsets from calibration engines held out of training; "cross": cross-conformal (every engine)"""
    calibration_fraction: float = 0.25
    calibration_folds: int = 4
    calibration_cuts: int = 20
    """cuts per calibration engine of ``calibration="cross"``"""
    calibration_method: str = "bins40/80_20cuts"
    """the conformal variant of ``calibration="split"`` (a key of :data:`core.ml.rul.coverage.VARIANTS`), chosen by
    the nested coverage study"""
    coverage_repeats: int = 10
    coverage_folds: int = 5
    """the nested coverage study (:func:`core.ml.rul.coverage.nested_coverage`): repeats × folds; 0 repeats: none"""
    seed: int = 0
    n_estimators: int = 400
    learning_rate: float = 0.03
    num_leaves: int = 15
    min_child_samples: int = 40
    subsample: float = 0.8
    colsample_bytree: float = 0.7
    n_jobs: int = 2
    extra: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "extra"}
        return {k: ",".join(map(str, v)) if isinstance(v, tuple) else v for k, v in out.items()}


def make_estimator(config: RulConfig, seed: int) -> Any:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=config.n_estimators,
        learning_rate=config.learning_rate,
        num_leaves=config.num_leaves,
        min_child_samples=config.min_child_samples,
        subsample=config.subsample,
        subsample_freq=1,
        colsample_bytree=config.colsample_bytree,
        n_jobs=config.n_jobs,
        random_state=seed,
        verbose=-1,
    )


def fit_regressor(
    trajectories: pd.DataFrame, train_units: Sequence[int] | np.ndarray, config: RulConfig, seed: int
) -> RulModel:
    """A :class:`RulModel` whose regressor is fitted on every cycle of the training engines (target: RUL capped at
    ``cap``); its calibrator is a placeholder until :func:`calibrate`."""
    train = trajectories[trajectories["unit"].isin(train_units)].sort_values(["unit", "cycle"])
    train = train.reset_index(drop=True)
    scaler = Scaler.fit(train, config.channels)
    placeholder = ConformalCalibrator(config.alpha, (), (0.0,), (0.0,))
    model = RulModel(
        make_estimator(config, seed), scaler, config.channels, config.mean_windows, config.slope_windows,
        placeholder, cap=config.cap, use_cycle=config.use_cycle, min_cycles=config.min_cycles,
    )  # fmt: skip
    features = model.features(train)
    model.estimator.fit(features.loc[:, model.feature_columns()], rul_target(train, config.cap).to_numpy())
    return model


def residual_pairs(
    model: RulModel, trajectories: pd.DataFrame, units: Sequence[int] | np.ndarray, config: RulConfig, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(predicted, true)`` at ``calibration_cuts`` test-like cuts of each of ``units`` (never training engines of
    ``model``)."""
    observed, truth = truncate(
        trajectories[trajectories["unit"].isin(units)], [seed, 7], cuts_per_engine=config.calibration_cuts
    )
    predicted = predict_last(model, observed)
    true = truth.set_index("unit").loc[predicted["unit"], "rul"].to_numpy()
    return predicted["rul"].to_numpy(dtype=float), np.asarray(true, dtype=float)


def fit_model(
    trajectories: pd.DataFrame,
    train_units: Sequence[int] | np.ndarray,
    calibration_units: Sequence[int] | np.ndarray,
    config: RulConfig,
    seed: int,
) -> RulModel:
    """Split conformal: the regressor on the training engines, the interval by ``config.calibration_method``
    (:data:`core.ml.rul.coverage.VARIANTS`) from the admissible test-like cuts of the calibration engines (disjoint
    from the training engines) — the same code the nested coverage study measures."""
    from core.ml.rul.coverage import VARIANTS, CalibrationData, predicted_cuts

    if set(np.asarray(train_units).tolist()) & set(np.asarray(calibration_units).tolist()):
        raise ValueError("an engine is both a training and a calibration engine")
    if config.calibration_method not in VARIANTS:
        raise ValueError(f"unknown calibration method {config.calibration_method!r} (one of {list(VARIANTS)})")
    model = fit_regressor(trajectories, train_units, config, seed)
    data = CalibrationData(
        predicted_cuts(model, trajectories[trajectories["unit"].isin(calibration_units)]),
        predicted_cuts(model, trajectories[trajectories["unit"].isin(train_units)]),
        np.random.default_rng([seed, 7]),
    )
    model.calibrator = VARIANTS[config.calibration_method](data, config.alpha)
    return model


def fit_model_cross(
    trajectories: pd.DataFrame, units: Sequence[int] | np.ndarray, config: RulConfig, seed: int
) -> RulModel:
    """Cross-conformal: the engines are dealt into ``calibration_folds`` folds; a regressor fitted without fold k
    gives the residuals of fold k's cuts, so every engine calibrates once, by a model that never saw it; the
    regressor served is fitted on all ``units``. (Its residuals are those of models trained on fewer engines: the
    interval errs on the wide side.)"""
    predicted, true = [], []
    for k, held in enumerate(engine_folds(units, config.calibration_folds, seed + 500)):
        rest = np.setdiff1d(np.asarray(units), held)
        p, t = residual_pairs(fit_regressor(trajectories, rest, config, seed + k + 1), trajectories, held, config, seed)
        predicted.append(p)
        true.append(t)
    model = fit_regressor(trajectories, units, config, seed)
    model.calibrator = ConformalCalibrator.fit(
        np.concatenate(predicted), np.concatenate(true), config.alpha, config.bin_edges
    )
    return model


def fit_for(
    trajectories: pd.DataFrame,
    train_units: np.ndarray,
    calibration_units: np.ndarray,
    config: RulConfig,
    seed: int,
) -> RulModel:
    """:func:`fit_model` (``calibration="split"``) or :func:`fit_model_cross` on both engine sets together."""
    if config.calibration == "cross":
        return fit_model_cross(trajectories, np.union1d(train_units, calibration_units), config, seed)
    return fit_model(trajectories, train_units, calibration_units, config, seed)


def evaluate(model: RulModel, observed: pd.DataFrame, truth: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame]:
    """Scores at the last cycle of each truncated unit, and the per-unit table (truth columns + estimates)."""
    out = predict_last(model, observed)
    table = truth.merge(
        out.rename(columns={"rul": "predicted"}).drop(columns=["last_cycle"]), on="unit", validate="1:1"
    )
    table = table.rename(columns={"rul": "true_rul"})
    return scores(table["predicted"], table["true_rul"], table["rul_lower"], table["rul_upper"]), table


@dataclass
class RulStudy:
    config: RulConfig
    development: np.ndarray
    promotion: np.ndarray
    fold_scores: pd.DataFrame
    """one row per (repeat, fold): METRICS + engines per role"""
    predictions: pd.DataFrame
    """out-of-fold estimates: repeat, fold, unit, source_unit, last_cycle, true_rul, predicted, rul_lower, rul_upper"""
    holdout_scores: dict[str, float]
    holdout_predictions: pd.DataFrame
    holdout_observed: pd.DataFrame
    """the promotion engines' cuts (trajectories) and their truth: promotion evidence for every version"""
    holdout_truth: pd.DataFrame
    model: RulModel
    seconds: dict[str, float]
    coverage: pd.DataFrame = field(default_factory=pd.DataFrame)
    """the nested coverage study: one row per (repeat, fold, calibration variant), empty when not run"""

    def cv_summary(self) -> dict[str, float]:
        """Mean and SD over folds of each metric (``cv_<metric>_mean`` / ``_sd``) and the pooled coverage."""
        out: dict[str, float] = {}
        for m in METRICS:
            out[f"cv_{m}_mean"] = float(self.fold_scores[m].mean())
            out[f"cv_{m}_sd"] = float(self.fold_scores[m].std(ddof=1)) if len(self.fold_scores) > 1 else 0.0
        p = self.predictions
        out["cv_coverage_pooled"] = float(
            ((p["rul_lower"] <= p["true_rul"]) & (p["true_rul"] <= p["rul_upper"])).mean()
        )
        out["cv_rmse_pooled"] = float(np.sqrt(np.mean((p["predicted"] - p["true_rul"]) ** 2)))
        return out


def run_study(trajectories: pd.DataFrame, config: RulConfig | None = None, *, progress: bool = True) -> RulStudy:
    """CV by engine on the development engines, the final model, its promotion-engine scores (module docstring)."""
    from tqdm.auto import tqdm

    config = config or RulConfig()
    development, promotion = promotion_engines(trajectories["unit"].unique())
    dev = trajectories[trajectories["unit"].isin(development)]
    rows, tables = [], []
    started = time.perf_counter()
    splits = cv_splits(development, config.folds, config.repeats, config.calibration_fraction, config.seed)
    for repeat, fold, split in tqdm(splits, desc="RUL CV folds", disable=not progress):
        seed = config.seed + 100 * repeat + fold
        model = fit_for(dev, split.train, split.calibration, config, seed)
        observed, truth = truncate(dev[dev["unit"].isin(split.validation)], [config.seed, 11, repeat, fold])
        fold_scores, table = evaluate(model, observed, truth)
        rows.append({"repeat": repeat, "fold": fold, "train_engines": len(split.train),
                     "calibration_engines": len(split.calibration), **fold_scores})  # fmt: skip
        tables.append(table.assign(repeat=repeat, fold=fold))
    cv_seconds = time.perf_counter() - started
    started = time.perf_counter()
    train, calibration = split_off(development, config.calibration_fraction, config.seed + 99)
    final = fit_for(dev, train, calibration, config, config.seed)
    fit_seconds = time.perf_counter() - started
    held_observed, held_truth = promotion_cuts(trajectories)
    holdout, holdout_table = evaluate(final, held_observed, held_truth)
    coverage, coverage_seconds = pd.DataFrame(), 0.0
    if config.coverage_repeats > 0 and config.calibration == "split":
        from core.ml.rul.coverage import nested_coverage

        started = time.perf_counter()
        coverage = nested_coverage(
            dev, development, config, repeats=config.coverage_repeats, folds=config.coverage_folds, progress=progress
        )
        coverage_seconds = time.perf_counter() - started
    return RulStudy(
        config=config,
        development=np.asarray(development),
        promotion=np.asarray(promotion),
        fold_scores=pd.DataFrame(rows),
        predictions=pd.concat(tables, ignore_index=True),
        holdout_scores=holdout,
        holdout_predictions=holdout_table,
        holdout_observed=held_observed,
        holdout_truth=held_truth,
        model=final,
        seconds={"cv_seconds": cv_seconds, "final_fit_seconds": fit_seconds, "coverage_seconds": coverage_seconds},
        coverage=coverage,
    )


__all__ = ["METRICS", "RulConfig", "RulStudy", "evaluate", "fit_model", "make_estimator", "run_study"]
