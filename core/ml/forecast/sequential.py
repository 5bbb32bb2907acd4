"""Sequential (online) interval calibration through the rolling-origin folds, for time series under shift (issue 16).

Split-conformal calibration on the validation folds alone (:func:`core.ml.forecast.conformal.fit_calibrations`)
assumes the later errors look like the validation ones; the forecast residuals are autocorrelated and their regime
changes over the day, so it missed the ±5-point target on the test folds. Here the calibration at each forecast
origin uses **every earlier fold whose outcomes are known at that origin** (with ``step = horizon`` a fold's last
target is the next fold's cut-off), as serving does live:

* **Weighted conformal** (Barber, Candès, Ramdas & Tibshirani 2023, non-exchangeable conformal prediction): the
  width-normalised scores of fold ``j`` weigh ``decay ** (k − 1 − j)`` at fold ``k`` (1 = every earlier fold
  alike; smaller = recent folds count more), per horizon bucket; the quantile is the weighted one, the new point
  weighing 1 (:class:`~core.ml.forecast.conformal.IntervalCalibration` with ``weights``).
* **Adaptive conformal inference** (Gibbs & Candès 2021), batch form: the level the quantile is taken at moves
  after each fold by ``level ← level + γ (nominal − coverage of that fold)`` (ACI's ``α_{t+1} = α_t + γ (α − err_t)``
  with ``err_t`` the fold's miss rate), so a stretch of under-coverage widens the next intervals; over ``T`` folds the
  average miss rate is within ``(max(α_1, 1 − α_1) + γ) / (γ T)`` of ``α`` whatever the shift (its guarantee;
  the level is clipped to [0.01, W/(W + 1)] when applied, which the bound does not cover).

``decay``, ``γ`` and the number of horizon buckets are chosen on the **validation folds** (:func:`choose_design`:
the lowest mean distance of the validation coverage from nominal over every (type, method)); the test folds are
then run once per design, and the design chosen on validation is the one reported and served. The state after the
last fold (scores, weights, ACI shift per level) is what the registered model carries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from core.ml.forecast.conformal import (
    COVERAGE_LEVELS,
    IntervalCalibration,
    bucket_index,
    bucket_starts,
    conformity_scores,
    coverage,
)

#: The designs tried (every combination is run on the validation folds; the test folds report every one).
DECAYS: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.5)
GAMMAS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2)
GROUP = ("sensor_type", "model")


@dataclass(frozen=True)
class SequentialDesign:
    decay: float = 1.0
    gamma: float = 0.0
    buckets: int = 3

    @property
    def label(self) -> str:
        return f"decay={self.decay:g}, gamma={self.gamma:g}, buckets={self.buckets}"


def weighted_calibration(
    scores: np.ndarray,
    steps: np.ndarray,
    weights: np.ndarray,
    *,
    base_interval: float,
    starts: tuple[int, ...],
    level_shift: tuple[tuple[float, float], ...] = (),
) -> IntervalCalibration:
    """One calibration from weighted scores, per horizon bucket of ``starts`` (pooled when a bucket is empty)."""
    index = bucket_index(starts, steps)
    if len(starts) > 1 and any(not np.any(index == i) for i in range(len(starts))):
        starts, index = (1,), np.zeros(len(scores), int)
    bucket_scores, bucket_weights = [], []
    for i in range(len(starts)):
        s, w = scores[index == i], weights[index == i]
        order = np.argsort(s, kind="stable")
        bucket_scores.append(tuple(float(v) for v in s[order]))
        bucket_weights.append(tuple(float(v) for v in w[order]))
    return IntervalCalibration(
        float(base_interval), tuple(bucket_scores), starts, tuple(bucket_weights), tuple(level_shift)
    )


@dataclass
class SequentialResult:
    predictions: pd.DataFrame
    """Every fold after the first with the calibrated ``yhat_lower``/``yhat_upper`` at the nominal level (raw bounds
    in ``yhat_lower_raw``/``yhat_upper_raw``); the first fold (nothing earlier to calibrate on) is left out."""
    curve: pd.DataFrame
    """Coverage and mean width per (type, model, fold, nominal) on scored points."""
    final: dict[tuple[str, ...], IntervalCalibration]
    """The state after the last fold (what a model trained now carries)."""


def run_sequential(
    predictions: pd.DataFrame,
    design: SequentialDesign,
    *,
    base_interval: float,
    horizon: int,
    interval: float,
    levels: Iterable[float] = (),
    exclude_faults: bool = True,
) -> SequentialResult:
    """Run the calibration through the folds of ``predictions`` (raw intervals at ``base_interval``; columns of
    :func:`core.ml.forecast.backtest.backtest`), oldest first, per (sensor type, model). At fold ``k`` only the
    scored points of folds ``< k`` are used (scores weighted by ``decay``), then the ACI level of every nominal level
    in ``levels`` ∪ {``interval``} is updated with fold ``k``'s coverage."""
    nominals = sorted({float(interval), *(float(v) for v in levels)})
    starts = bucket_starts(horizon, design.buckets)
    frames, records = [], []
    final: dict[tuple[str, ...], IntervalCalibration] = {}
    for key, group in predictions.groupby(list(GROUP), sort=True):
        key = tuple(str(k) for k in (key if isinstance(key, tuple) else (key,)))
        folds = sorted(group["fold"].unique())
        keep = group["actual"].notna().to_numpy(copy=True)
        if exclude_faults:
            keep &= ~group["in_fault"].astype(bool).to_numpy()
        all_scores = conformity_scores(group["actual"], group["yhat_lower"], group["yhat_upper"])
        keep = keep & np.isfinite(all_scores)
        fold_of = group["fold"].to_numpy()
        step_of = group["step"].to_numpy(int)
        shift = dict.fromkeys(nominals, 0.0)
        for position, fold in enumerate(folds):
            earlier = keep & (fold_of < fold)
            if earlier.any():
                age = np.searchsorted(folds, fold_of[earlier])  # position of each score's fold
                weights = design.decay ** (position - 1 - age).astype(float)
                rows = group[fold_of == fold]
                scored_rows = keep[fold_of == fold]
                # the earlier folds' scores sorted once per fold; each nominal level only adds its ACI shift
                earlier_calibration = weighted_calibration(
                    all_scores[earlier], step_of[earlier], weights, base_interval=base_interval, starts=starts
                )
                for nominal in nominals:
                    calibration = replace(earlier_calibration, level_shift=((nominal, shift[nominal]),))
                    if nominal > calibration.max_interval:  # too few earlier scores for this level: raw bounds
                        lower, upper = rows["yhat_lower"].to_numpy(float), rows["yhat_upper"].to_numpy(float)
                        if nominal != float(interval):
                            continue
                    else:
                        lower, upper = calibration.apply(
                            rows["yhat"], rows["yhat_lower"], rows["yhat_upper"], nominal, rows["step"]
                        )
                    y = rows["actual"].to_numpy(float)[scored_rows]
                    covered = coverage(y, lower[scored_rows], upper[scored_rows])
                    records.append(
                        dict(zip(GROUP, key, strict=True))
                        | {
                            "fold": int(fold),
                            "role": str(rows["role"].iloc[0]),
                            "nominal": nominal,
                            "covered": covered * int(scored_rows.sum()) if scored_rows.any() else 0.0,
                            "width_sum": float(np.sum((upper - lower)[scored_rows])),
                            "n": int(scored_rows.sum()),
                        }
                    )
                    if nominal == float(interval):
                        frames.append(
                            rows.assign(
                                yhat_lower_raw=rows["yhat_lower"],
                                yhat_upper_raw=rows["yhat_upper"],
                                yhat_lower=lower,
                                yhat_upper=upper,
                            )
                        )
                    if design.gamma and scored_rows.any():
                        shift[nominal] += design.gamma * (nominal - covered)
        # the state after the last fold: every fold's scores, the last one weighing 1
        age = np.searchsorted(folds, fold_of[keep])
        weights = design.decay ** (len(folds) - 1 - age).astype(float)
        final[key] = weighted_calibration(
            all_scores[keep], step_of[keep], weights, base_interval=base_interval, starts=starts,
            level_shift=tuple(shift.items()) if design.gamma else (),
        )  # fmt: skip
    calibrated = pd.concat(frames, ignore_index=True) if frames else predictions.iloc[0:0]
    curve = pd.DataFrame(records, columns=[*GROUP, "fold", "role", "nominal", "covered", "width_sum", "n"])
    return SequentialResult(calibrated, curve, final)


def summarise(curve: pd.DataFrame, role: str) -> pd.DataFrame:
    """Coverage and mean width per (type, model, nominal) over the folds of ``role``."""
    rows = curve[curve["role"] == role]
    out = rows.groupby([*GROUP, "nominal"], as_index=False)[["covered", "width_sum", "n"]].sum()
    out["coverage"] = out["covered"] / out["n"].where(out["n"] > 0)
    out["width"] = out["width_sum"] / out["n"].where(out["n"] > 0)
    return out.loc[:, [*GROUP, "nominal", "coverage", "width", "n"]]


def design_grid(buckets: int, decays: Sequence[float] = DECAYS, gammas: Sequence[float] = GAMMAS) -> list[
    SequentialDesign
]:
    """Every (decay, γ) with the study's horizon buckets and with one pooled bucket."""
    counts = sorted({1, int(buckets)})
    return [SequentialDesign(d, g, b) for b in counts for d in decays for g in gammas]


def evaluate_designs(
    predictions: pd.DataFrame,
    designs: Sequence[SequentialDesign],
    *,
    base_interval: float,
    horizon: int,
    interval: float,
    exclude_faults: bool = True,
) -> pd.DataFrame:
    """Coverage and width at ``interval`` per design, (type, model) and role (one row each)."""
    tables = []
    for design in designs:
        result = run_sequential(
            predictions, design, base_interval=base_interval, horizon=horizon, interval=interval,
            exclude_faults=exclude_faults,
        )  # fmt: skip
        for role in sorted(result.curve["role"].unique()):
            table = summarise(result.curve, role).drop(columns="nominal")
            tables.append(
                table.assign(
                    design=design.label, decay=design.decay, gamma=design.gamma, buckets=design.buckets, role=role
                )
            )
    columns = ["design", "decay", "gamma", "buckets", "role", *GROUP, "coverage", "width", "n"]
    return pd.concat(tables, ignore_index=True).loc[:, columns] if tables else pd.DataFrame(columns=columns)


def choose_design(table: pd.DataFrame, interval: float, role: str = "validation") -> SequentialDesign:
    """The design whose coverage on the ``role`` folds is closest to ``interval`` on average over every (type,
    model); ties (within 0.001) go to the simpler design (fewer buckets, no ACI, no decay: the grid's order)."""
    rows = table[table["role"] == role]
    if rows.empty:
        raise ValueError(f"no {role} folds to choose the calibration design on")
    distance = rows.assign(distance=(rows["coverage"] - interval).abs()).groupby(
        ["design", "decay", "gamma", "buckets"], as_index=False, sort=False
    )["distance"].mean()
    distance = distance.assign(
        order=list(zip(distance["buckets"], -distance["decay"], distance["gamma"], strict=True))
    )
    best = distance["distance"].min()
    pick = distance[distance["distance"] <= best + 1e-3].sort_values("order").iloc[0]
    return SequentialDesign(float(pick["decay"]), float(pick["gamma"]), int(pick["buckets"]))


__all__ = [
    "COVERAGE_LEVELS",
    "DECAYS",
    "GAMMAS",
    "SequentialDesign",
    "SequentialResult",
    "bucket_starts",
    "choose_design",
    "design_grid",
    "evaluate_designs",
    "run_sequential",
    "summarise",
    "weighted_calibration",
]
