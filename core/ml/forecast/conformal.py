"""Split-conformal calibration of the forecast intervals (issue 16: the raw intervals covered 39–91 % of a nominal
80 % on the test folds, depending on the type and method).

**Score.** For a forecast with raw interval ``[lo, hi]`` (the method's own ``base`` interval, 0.8 by default) and
actual ``y``, the conformity score is the width-normalised CQR score

    s = max(lo − y, y − hi) / max(hi − lo, ε)

(negative inside the interval, positive outside; normalising by the width keeps each sensor's and each horizon
step's own interval shape, so sensors of one type with different noise levels share one calibration).

**Calibration** (per sensor type and method, on the *validation* folds only, fault-window targets excluded as in
the metrics): the scores ``s_1..s_n`` are stored. For a requested coverage ``α`` the factor ``c(α)`` is the
``⌈(n + 1) α⌉``-th smallest score, and the served interval is

    [lo − c · w, hi + c · w],   w = hi − lo

(widened when ``c > 0``, narrowed when ``c < 0``; never past the point forecast). If the validation and later points
are exchangeable this covers at least ``α`` of them (split-conformal guarantee); a time series is not exchangeable,
so the coverage is *measured* on the later test folds, which the calibration never saw. ``α`` above
``n / (n + 1)`` cannot be calibrated from ``n`` scores (:class:`IntervalCalibration.factor` raises).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

#: Coverage levels at which the study measures calibrated coverage on the test folds (the coverage plot, the
#: model metadata the API returns).
COVERAGE_LEVELS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
_EPS = 1e-12


def conformity_scores(actual: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> np.ndarray:
    """``max(lo − y, y − hi) / max(hi − lo, ε)`` per point (NaN where any input is missing)."""
    y, lo, hi = (np.asarray(a, float) for a in (actual, lower, upper))
    width = np.maximum(hi - lo, _EPS * (1.0 + np.abs(lo) + np.abs(hi)))
    scores: np.ndarray = np.maximum(lo - y, y - hi) / width
    return scores


@dataclass(frozen=True)
class IntervalCalibration:
    """Sorted conformity scores of one (sensor type, method) on its validation folds, for raw intervals at
    ``base_interval``."""

    base_interval: float
    scores: tuple[float, ...]

    def __post_init__(self) -> None:
        if not 0.0 < self.base_interval < 1.0:
            raise ValueError(f"base_interval must be in (0, 1), got {self.base_interval}")
        if not self.scores:
            raise ValueError("a calibration needs at least one score")

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def max_interval(self) -> float:
        """The highest coverage that ``n`` scores can calibrate: ``n / (n + 1)``."""
        return self.n / (self.n + 1)

    def factor(self, interval: float) -> float:
        """``c(α)``: the ``⌈(n + 1) α⌉``-th smallest score (in units of the raw interval's width)."""
        if not 0.0 < interval < 1.0:
            raise ValueError(f"interval must be in (0, 1), got {interval}")
        k = math.ceil((self.n + 1) * interval - 1e-9)
        if k > self.n:
            raise ValueError(
                f"a {interval:.0%} interval needs at least {math.ceil(interval / (1 - interval))} calibration "
                f"scores; this model was calibrated on {self.n} (at most {self.max_interval:.1%})"
            )
        return float(self.scores[max(k, 1) - 1])

    def apply(
        self, yhat: ArrayLike, lower: ArrayLike, upper: ArrayLike, interval: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated ``(lower, upper)`` at coverage ``interval`` from raw bounds at ``base_interval``."""
        c = self.factor(interval)
        y_hat, lo, hi = (np.asarray(a, float) for a in (yhat, lower, upper))
        width = hi - lo
        return np.minimum(lo - c * width, y_hat), np.maximum(hi + c * width, y_hat)

    def to_dict(self) -> dict[str, Any]:
        return {"base_interval": self.base_interval, "scores": [round(s, 6) for s in self.scores]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntervalCalibration:
        return cls(float(data["base_interval"]), tuple(sorted(float(s) for s in data["scores"])))

    @classmethod
    def fit(cls, actual: ArrayLike, lower: ArrayLike, upper: ArrayLike, base_interval: float) -> IntervalCalibration:
        scores = conformity_scores(actual, lower, upper)
        scores = np.sort(scores[np.isfinite(scores)])
        return cls(float(base_interval), tuple(float(s) for s in scores))


def fit_calibrations(
    predictions: pd.DataFrame, base_interval: float, by: Sequence[str] = ("sensor_type", "model")
) -> dict[tuple[str, ...], IntervalCalibration]:
    """One calibration per group of *scored* validation predictions (the caller excludes missing and fault-window
    targets). Raises if the frame holds anything but validation folds."""
    roles = set(predictions["role"].unique()) if "role" in predictions else set()
    if roles - {"validation"}:
        raise ValueError(f"calibration must only see validation folds, got roles {sorted(roles)}")
    out: dict[tuple[str, ...], IntervalCalibration] = {}
    for key, group in predictions.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        calibration = IntervalCalibration.fit(
            group["actual"], group["yhat_lower"], group["yhat_upper"], base_interval
        )
        out[tuple(str(k) for k in key)] = calibration
    return out


def calibrate_predictions(
    predictions: pd.DataFrame,
    calibrations: Mapping[tuple[str, ...], IntervalCalibration],
    interval: float,
    by: Sequence[str] = ("sensor_type", "model"),
) -> pd.DataFrame:
    """``predictions`` with calibrated ``yhat_lower``/``yhat_upper`` at ``interval`` and the raw bounds kept as
    ``yhat_lower_raw``/``yhat_upper_raw``. A group without a calibration keeps its raw bounds."""
    out = predictions.copy()
    out["yhat_lower_raw"] = out["yhat_lower"]
    out["yhat_upper_raw"] = out["yhat_upper"]
    for key, index in out.groupby(list(by), sort=False).groups.items():
        key = key if isinstance(key, tuple) else (key,)
        calibration = calibrations.get(tuple(str(k) for k in key))
        if calibration is None:
            continue
        rows = out.loc[index]
        lower, upper = calibration.apply(rows["yhat"], rows["yhat_lower_raw"], rows["yhat_upper_raw"], interval)
        out.loc[index, "yhat_lower"] = lower
        out.loc[index, "yhat_upper"] = upper
    return out


def coverage(actual: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    y, lo, hi = (np.asarray(a, float) for a in (actual, lower, upper))
    has = np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi)
    return float(np.mean((y[has] >= lo[has]) & (y[has] <= hi[has]))) if has.any() else float("nan")


def interval_table(
    predictions: pd.DataFrame,
    calibrations: Mapping[tuple[str, ...], IntervalCalibration],
    interval: float,
    by: Sequence[str] = ("sensor_type", "model"),
) -> pd.DataFrame:
    """Per group of *scored* calibrated predictions (:func:`calibrate_predictions`): ``coverage`` and ``width``
    (mean) of the calibrated interval, ``coverage_raw`` and ``width_raw`` of the raw one, the calibration's
    ``cal_factor`` at ``interval`` and ``cal_n`` (its number of validation scores), ``n`` points."""
    records = []
    for key, group in predictions.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        calibration = calibrations.get(tuple(str(k) for k in key))
        records.append(
            dict(zip(by, key, strict=True))
            | {
                "coverage": coverage(group["actual"], group["yhat_lower"], group["yhat_upper"]),
                "coverage_raw": coverage(group["actual"], group["yhat_lower_raw"], group["yhat_upper_raw"]),
                "width": float(np.nanmean(group["yhat_upper"] - group["yhat_lower"])),
                "width_raw": float(np.nanmean(group["yhat_upper_raw"] - group["yhat_lower_raw"])),
                "cal_factor": calibration.factor(interval) if calibration is not None else float("nan"),
                "cal_n": float(calibration.n) if calibration is not None else 0.0,
                "n": float(len(group)),
            }
        )
    columns = [*by, "coverage", "coverage_raw", "width", "width_raw", "cal_factor", "cal_n", "n"]
    return pd.DataFrame(records, columns=columns)


def coverage_curve(
    predictions: pd.DataFrame,
    calibrations: Mapping[tuple[str, ...], IntervalCalibration],
    levels: Iterable[float] = COVERAGE_LEVELS,
    by: Sequence[str] = ("sensor_type", "model"),
) -> pd.DataFrame:
    """Calibrated coverage and mean width at each nominal level per group of *scored* predictions (raw bounds in
    ``yhat_lower_raw``/``yhat_upper_raw`` or ``yhat_lower``/``yhat_upper``). Levels a group's calibration cannot
    reach are left out."""
    low_col = "yhat_lower_raw" if "yhat_lower_raw" in predictions else "yhat_lower"
    high_col = "yhat_upper_raw" if "yhat_upper_raw" in predictions else "yhat_upper"
    records = []
    for key, group in predictions.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        calibration = calibrations.get(tuple(str(k) for k in key))
        if calibration is None:
            continue
        for level in levels:
            if level > calibration.max_interval:
                continue
            lower, upper = calibration.apply(group["yhat"], group[low_col], group[high_col], level)
            records.append(
                dict(zip(by, key, strict=True))
                | {
                    "nominal": float(level),
                    "coverage": coverage(group["actual"], lower, upper),
                    "width": float(np.nanmean(upper - lower)),
                    "factor": calibration.factor(level),
                    "n": len(group),
                }
            )
    return pd.DataFrame(records, columns=[*by, "nominal", "coverage", "width", "factor", "n"])


__all__ = [
    "COVERAGE_LEVELS",
    "IntervalCalibration",
    "calibrate_predictions",
    "conformity_scores",
    "coverage",
    "coverage_curve",
    "fit_calibrations",
    "interval_table",
]
