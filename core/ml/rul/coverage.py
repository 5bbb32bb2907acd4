"""How often the 90 % interval covers on engines never used to fit or calibrate it: repeated, engine-grouped,
nested splits, and the calibration variants compared on them.

Each of ``repeats`` × ``folds`` splits deals the development engines into **evaluation** engines (one fold) and,
among the rest, **training** engines (the regressor) and **calibration** engines (the conformal offsets): three
disjoint sets (:class:`core.ml.rul.evaluation.EngineSplit`). In a split the regressor is fitted once and every
calibration variant is fitted on the same calibration engines, then scored on the same evaluation engines.

Coverage is measured under the official test protocol: an engine is observed up to a cut whose true RUL is
uniform on ``1 … min(145, life − 31)`` (:func:`core.ml.rul.evaluation.truncate`). Because a feature row at cycle
c reads cycles ≤ c only, the estimate at a cut equals the full trajectory's estimate at that cycle, so every
admissible cut of an evaluation engine is scored exactly (no sampling of cuts):

* **per engine** — each engine's share of covered cuts, averaged over engines (every engine weighs the same):
  the expected coverage of a test set with one uniform cut per engine, as FD001's;
* **per cut** — covered cuts over all cuts (long-lived engines, with more admissible cuts, weigh more).

Both are reported per split; mean, SD and the 5–95 % range over splits say how stable they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from core.ml.rul.evaluation import (
    DEFAULT_MAX_RUL,
    DEFAULT_MIN_CYCLES,
    DEFAULT_MIN_RUL,
    ConformalCalibrator,
    cv_splits,
)

if TYPE_CHECKING:
    from core.ml.rul.model import RulModel
    from core.ml.rul.study import RulConfig

__all__ = [
    "VARIANTS",
    "CalibrationData",
    "Variant",
    "admissible_cuts",
    "coverage_of",
    "difficulty_scale",
    "nested_coverage",
    "predicted_cuts",
    "summarise_coverage",
]


def admissible_cuts(
    trajectories: pd.DataFrame,
    *,
    min_rul: int = DEFAULT_MIN_RUL,
    max_rul: int = DEFAULT_MAX_RUL,
    min_cycles: int = DEFAULT_MIN_CYCLES,
) -> pd.DataFrame:
    """The cycles at which :func:`core.ml.rul.evaluation.truncate` may cut each engine (``unit``, ``cycle``,
    ``rul``, ``weight``); engines too short for one cut are left out."""
    life = trajectories.groupby("unit")["cycle"].transform("max")
    rul = life - trajectories["cycle"]
    high = np.minimum(max_rul, life - min_cycles)
    keep = (rul >= min_rul) & (rul <= high)
    out = pd.DataFrame({"unit": trajectories["unit"], "cycle": trajectories["cycle"], "rul": rul})[keep]
    out = out.reset_index(drop=True)
    out["weight"] = 1.0 / out.groupby("unit")["cycle"].transform("count")
    return out


def coverage_of(lower: ArrayLike, upper: ArrayLike, cuts: pd.DataFrame) -> dict[str, float]:
    """``per_engine`` and ``per_cut`` coverage, ``width`` (mean, per engine) of intervals at ``cuts``."""
    lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    true = cuts["rul"].to_numpy(dtype=float)
    covered = (lo <= true) & (true <= hi)
    w = cuts["weight"].to_numpy(dtype=float)
    engines = float(cuts["unit"].nunique())
    return {
        "per_engine": float(np.sum(w * covered) / engines),
        "per_cut": float(np.mean(covered)),
        "width": float(np.sum(w * (hi - lo)) / engines),
    }


def summarise_coverage(table: pd.DataFrame) -> pd.DataFrame:
    """Per variant: mean, SD, 5 % and 95 % quantiles over the splits of ``per_engine``, ``per_cut``, ``width``,
    and the share of splits whose per-engine coverage lies in 88–92 %."""
    rows = []
    for variant, group in table.groupby("variant", sort=False):
        row: dict[str, float | str] = {"variant": str(variant), "splits": float(len(group))}
        for m in ("per_engine", "per_cut", "width", "one_cut"):
            values = group[m].to_numpy(dtype=float)
            row[f"{m}_mean"] = float(values.mean())
            row[f"{m}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            row[f"{m}_p05"] = float(np.quantile(values, 0.05))
            row[f"{m}_p95"] = float(np.quantile(values, 0.95))
        row["in_band_share"] = float(np.mean((group["per_engine"] >= 0.88) & (group["per_engine"] <= 0.92)))
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class CalibrationData:
    """What a calibration variant may use: the calibration engines' admissible cuts with the estimates there
    (``cuts``: unit, cycle, rul, weight, predicted), the training engines' admissible cuts with their in-sample
    estimates (``train``, same columns; true RUL uncapped, as at evaluation) and a seeded generator."""

    cuts: pd.DataFrame
    train: pd.DataFrame
    rng: np.random.Generator


Variant = Callable[[CalibrationData, float], ConformalCalibrator]


def difficulty_scale(train: pd.DataFrame) -> tuple[float, float]:
    """σ(ŷ) = a + b·ŷ: least squares of the training engines' |in-sample residual| on the estimate (a difficulty
    model fitted without the calibration engines; the conformal quantiles absorb its in-sample optimism)."""
    p = train["predicted"].to_numpy(dtype=float)
    r = np.abs(train["rul"].to_numpy(dtype=float) - p)
    b, a = np.polyfit(p, r, 1)
    return float(max(a, 1.0)), float(max(b, 0.0))


def _sampled(cuts: pd.DataFrame, per_engine: int, rng: np.random.Generator) -> pd.DataFrame:
    """``per_engine`` cuts of each engine drawn uniformly with replacement (as :func:`truncate` draws them)."""
    picks = [group.iloc[rng.integers(0, len(group), size=per_engine)] for _, group in cuts.groupby("unit")]
    return pd.concat(picks, ignore_index=True)


def _variant(*, sampled: int = 0, edges: Sequence[float] | str = (), normalised: bool = False) -> Variant:
    def fit(data: CalibrationData, alpha: float) -> ConformalCalibrator:
        cuts = _sampled(data.cuts, sampled, data.rng) if sampled else data.cuts
        weights = None if sampled else cuts["weight"].to_numpy(dtype=float)
        p = cuts["predicted"].to_numpy(dtype=float)
        bins: Sequence[float] = (
            tuple(float(q) for q in np.quantile(p, [1 / 3, 2 / 3])) if edges == "terciles" else tuple(edges)  # type: ignore[arg-type]
        )
        scale = difficulty_scale(data.train) if normalised else (1.0, 0.0)
        return ConformalCalibrator.fit(p, cuts["rul"], alpha, bins, weights=weights, scale=scale)

    return fit


#: The calibration variants compared by :func:`nested_coverage` (name → fit).
VARIANTS: Mapping[str, Variant] = {
    "bins40/80_20cuts": _variant(sampled=20, edges=(40.0, 80.0)),
    "bins40/80_allcuts_engine-weighted": _variant(edges=(40.0, 80.0)),
    "onebin_allcuts_engine-weighted": _variant(),
    "terciles_allcuts_engine-weighted": _variant(edges="terciles"),
    "normalised_allcuts_engine-weighted": _variant(normalised=True),
    "normalised_bins40/80_allcuts_engine-weighted": _variant(edges=(40.0, 80.0), normalised=True),
    "normalised_20cuts": _variant(sampled=20, normalised=True),
}


def predicted_cuts(model: RulModel, trajectories: pd.DataFrame) -> pd.DataFrame:
    """Admissible cuts of ``trajectories`` with the model's estimate at each (= its estimate on the truncated
    trajectory: features read past cycles only)."""
    features = model.features(trajectories)
    rows = features.loc[:, ["unit", "cycle"]].assign(predicted=model.predict_rows(features))
    cuts = admissible_cuts(trajectories)
    return cuts.merge(rows, on=["unit", "cycle"], how="left", validate="1:1")


def nested_coverage(
    trajectories: pd.DataFrame,
    units: Sequence[int] | np.ndarray,
    config: RulConfig,
    *,
    repeats: int = 10,
    folds: int = 5,
    variants: Mapping[str, Variant] | None = None,
    seed: int = 4242,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per (repeat, fold, variant): ``per_engine``, ``per_cut``, ``width``, ``one_cut`` (coverage of one
    uniform cut per evaluation engine, the realised FD001-like test set), ``rmse_one_cut``, engine counts. The
    splits (seeded apart from the training CV) use ``config.calibration_fraction`` of the non-evaluation engines
    for calibration."""
    from tqdm.auto import tqdm

    from core.ml.rul.study import fit_regressor

    chosen = dict(variants or VARIANTS)
    rows = []
    splits = cv_splits(units, folds, repeats, config.calibration_fraction, seed)
    for repeat, fold, split in tqdm(splits, desc="nested coverage splits", disable=not progress):
        started = time.perf_counter()
        split_seed = seed + 100 * repeat + fold
        model = fit_regressor(trajectories, split.train, config, split_seed)
        train_rows = predicted_cuts(model, trajectories[trajectories["unit"].isin(split.train)])
        calibration = predicted_cuts(model, trajectories[trajectories["unit"].isin(split.calibration)])
        evaluation = predicted_cuts(model, trajectories[trajectories["unit"].isin(split.validation)])
        one = _sampled(evaluation, 1, np.random.default_rng([seed, repeat, fold, 1]))
        fit_seconds = time.perf_counter() - started
        for name, fit in chosen.items():
            data = CalibrationData(calibration, train_rows, np.random.default_rng([seed, repeat, fold, 2]))
            calibrator = fit(data, config.alpha)
            lo, hi = calibrator.interval(evaluation["predicted"])
            one_lo, one_hi = calibrator.interval(one["predicted"])
            one_true = one["rul"].to_numpy(dtype=float)
            rows.append({
                "repeat": repeat, "fold": fold, "variant": name,
                "train_engines": len(split.train), "calibration_engines": len(split.calibration),
                "evaluation_engines": len(split.validation),
                **coverage_of(lo, hi, evaluation),
                "one_cut": float(np.mean((one_lo <= one_true) & (one_true <= one_hi))),
                "rmse_one_cut": float(np.sqrt(np.mean((one["predicted"].to_numpy() - one_true) ** 2))),
                "fit_seconds": fit_seconds,
            })  # fmt: skip
    return pd.DataFrame(rows)


def with_fraction(config: RulConfig, fraction: float) -> RulConfig:
    """``config`` with another share of calibration engines (for the "more calibration engines" variant)."""
    return replace(config, calibration_fraction=fraction)
