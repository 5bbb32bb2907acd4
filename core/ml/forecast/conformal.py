"""Conformal calibration of the forecast intervals (issue 16: the raw intervals covered 39–91 % of a nominal 80 % on
the test folds, depending on the type and method): the score, :class:`IntervalCalibration` (plain, weighted, with an
adaptive level shift) and the split-conformal fit on the validation folds. The study and the served models use the
*sequential* calibration built from these pieces (:mod:`core.ml.forecast.sequential`); the split-conformal fit below
is the first design, kept as the baseline the study reports beside it.

**Score.** For a forecast with raw interval ``[lo, hi]`` (the method's own ``base`` interval, 0.8 by default) and
actual ``y``, the conformity score is the width-normalised CQR score

    s = max(lo − y, y − hi) / max(hi − lo, ε)

(negative inside the interval, positive outside; normalising by the width keeps each sensor's and each horizon
step's own interval shape, so sensors of one type with different noise levels share one calibration).

**Calibration** (per sensor type and method, on the *validation* folds only, fault-window targets excluded as in
the metrics), **per horizon bucket**: the horizon is split into ``buckets`` consecutive step ranges (thirds by
default: steps 1–8, 9–16, 17–24) because the recursive LightGBM's and Prophet's errors grow with the horizon faster
than their raw intervals do (seen on the validation folds: LightGBM's raw coverage fell from 0.79 to 0.57 over the
horizon for humidity, Prophet's from 0.67 to 0.35 for pressure). Fewer buckets are used when a bucket would hold
fewer than ``min_bucket_scores`` scores. For a requested coverage ``α`` the factor of a bucket with scores
``s_1..s_n`` is ``c(α)``, the ``⌈(n + 1) α⌉``-th smallest score, and the served interval is

    [lo − c · w, hi + c · w],   w = hi − lo

(widened when ``c > 0``, narrowed when ``c < 0``; never past the point forecast). Steps beyond the calibrated
horizon use the last bucket. If validation and later points were exchangeable this would cover at least ``α`` of
them (the split-conformal guarantee); a time series is not exchangeable, so the coverage is *measured* on the later
test folds, which the calibration never saw. ``α`` above ``n / (n + 1)`` of the smallest bucket cannot be
calibrated (:meth:`IntervalCalibration.factors` raises).
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


def bucket_starts(horizon: int, buckets: int) -> tuple[int, ...]:
    """First step of each of ``buckets`` equal step ranges of ``horizon`` (thirds: 1, 9, 17 for 24)."""
    count = max(1, min(int(buckets), int(horizon)))
    return tuple(sorted({1 + round(i * horizon / count) for i in range(count)}))


def bucket_index(starts: Sequence[int], steps: ArrayLike) -> np.ndarray:
    """Bucket index of each 1-based horizon step for buckets starting at ``starts`` (later steps: the last)."""
    index = np.searchsorted(starts, np.asarray(steps, int), side="right") - 1
    clipped: np.ndarray = np.clip(index, 0, len(starts) - 1)
    return clipped


@dataclass(frozen=True)
class IntervalCalibration:
    """Sorted conformity scores of one (sensor type, method) on its validation folds, per horizon bucket, for raw
    intervals at ``base_interval``. Bucket ``i`` holds steps ``bucket_starts[i]`` up to the next start − 1 (the last
    bucket: every later step)."""

    base_interval: float
    scores: tuple[tuple[float, ...], ...]
    bucket_starts: tuple[int, ...] = (1,)
    weights: tuple[tuple[float, ...], ...] | None = None
    """Weight of each score (same shape as ``scores``; None: all 1). The quantile is the weighted one of Barber et
    al. (2023), the new point weighing 1: the smallest score whose cumulative weight reaches ``α (W + 1)``."""
    level_shift: tuple[tuple[float, float], ...] = ()
    """Adaptive-conformal (ACI) state: ``(nominal, effective − nominal)`` pairs; the quantile is taken at the
    effective level (the shift interpolated between the stored nominal levels, the nearest one outside them)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.base_interval < 1.0:
            raise ValueError(f"base_interval must be in (0, 1), got {self.base_interval}")
        if len(self.scores) != len(self.bucket_starts) or not self.scores or not all(self.scores):
            raise ValueError("a calibration needs one non-empty score list per horizon bucket")
        if self.weights is not None and [len(w) for w in self.weights] != [len(s) for s in self.scores]:
            raise ValueError("weights must have the shape of the scores")
        if self.bucket_starts[0] != 1 or list(self.bucket_starts) != sorted(set(self.bucket_starts)):
            raise ValueError(f"bucket starts must increase from step 1, got {self.bucket_starts}")

    @classmethod
    def pooled(cls, base_interval: float, scores: Iterable[float]) -> IntervalCalibration:
        """One bucket for every horizon step."""
        return cls(float(base_interval), (tuple(sorted(float(s) for s in scores)),))

    @property
    def n(self) -> int:
        """Scores in all buckets."""
        return sum(len(s) for s in self.scores)

    @property
    def max_interval(self) -> float:
        """The highest coverage every bucket can calibrate: ``W / (W + 1)`` of the smallest (W = its total weight,
        ``n`` unweighted)."""
        w = min(self._total_weights())
        return w / (w + 1)

    def _total_weights(self) -> list[float]:
        if self.weights is None:
            return [float(len(s)) for s in self.scores]
        return [float(sum(w)) for w in self.weights]

    def effective_level(self, interval: float) -> float:
        """The level the quantile is taken at: ``interval`` plus the ACI shift (0 without one), clipped to
        [0.01, :attr:`max_interval`] (ACI's level may leave [0, 1]; an infinite or empty interval is not served)."""
        if not self.level_shift:
            return interval
        nominal = np.array([n for n, _ in self.level_shift])
        shift = np.array([d for _, d in self.level_shift])
        order = np.argsort(nominal)
        level = interval + float(np.interp(interval, nominal[order], shift[order]))
        return float(min(max(level, 0.01), self.max_interval))

    def factors(self, interval: float) -> tuple[float, ...]:
        """``c(α)`` per bucket: its ``⌈(n + 1) α⌉``-th smallest score (in units of the raw interval's width); the
        weighted quantile when the scores carry weights, at the ACI-shifted level when there is a shift. A nominal
        ``interval`` above :attr:`max_interval` is refused (whatever the shift)."""
        if not 0.0 < interval < 1.0:
            raise ValueError(f"interval must be in (0, 1), got {interval}")
        if interval > self.max_interval + 1e-12:
            n = min(len(s) for s in self.scores)
            raise ValueError(
                f"a {interval:.0%} interval needs at least {math.ceil(interval / (1 - interval))} calibration "
                f"scores per horizon bucket; this model has {n} (at most {self.max_interval:.1%})"
            )
        level = self.effective_level(interval)
        out = []
        for i, scores in enumerate(self.scores):
            if self.weights is None:
                k = math.ceil((len(scores) + 1) * level - 1e-9)
            else:
                cumulative = np.cumsum(self.weights[i])
                k = int(np.searchsorted(cumulative, level * (cumulative[-1] + 1.0) - 1e-9)) + 1
            out.append(float(scores[min(max(k, 1), len(scores)) - 1]))
        return tuple(out)

    def bucket_of(self, steps: ArrayLike) -> np.ndarray:
        """Bucket index of each 1-based horizon step."""
        return bucket_index(self.bucket_starts, steps)

    def apply(
        self, yhat: ArrayLike, lower: ArrayLike, upper: ArrayLike, interval: float, steps: ArrayLike | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated ``(lower, upper)`` at coverage ``interval`` from raw bounds at ``base_interval``;
        ``steps`` (1-based horizon step of each point) may be omitted for a pooled calibration only."""
        y_hat, lo, hi = (np.asarray(a, float) for a in (yhat, lower, upper))
        if steps is None:
            if len(self.scores) > 1:
                raise ValueError("a calibration by horizon bucket needs the horizon step of each point")
            steps = np.ones(y_hat.shape, int)
        c = np.asarray(self.factors(interval))[self.bucket_of(steps)]
        width = hi - lo
        return np.minimum(lo - c * width, y_hat), np.maximum(hi + c * width, y_hat)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "base_interval": self.base_interval,
            "bucket_starts": list(self.bucket_starts),
            "scores": [[round(s, 6) for s in bucket] for bucket in self.scores],
        }
        if self.weights is not None:
            out["weights"] = [[round(w, 8) for w in bucket] for bucket in self.weights]
        if self.level_shift:
            out["level_shift"] = [[n, round(d, 8)] for n, d in self.level_shift]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntervalCalibration:
        """Scores stored sorted (weights in the same order), as :meth:`to_dict` writes them."""
        scores = tuple(tuple(float(s) for s in bucket) for bucket in data["scores"])
        weights = data.get("weights")
        if weights is None:
            scores = tuple(tuple(sorted(bucket)) for bucket in scores)
        return cls(
            float(data["base_interval"]),
            scores,
            tuple(int(s) for s in data.get("bucket_starts", [1])),
            tuple(tuple(float(w) for w in bucket) for bucket in weights) if weights is not None else None,
            tuple((float(n), float(d)) for n, d in data.get("level_shift", [])),
        )

    @classmethod
    def fit(
        cls,
        actual: ArrayLike,
        lower: ArrayLike,
        upper: ArrayLike,
        steps: ArrayLike,
        *,
        base_interval: float,
        horizon: int,
        buckets: int = 3,
        min_bucket_scores: int = 20,
    ) -> IntervalCalibration:
        """Scores split into at most ``buckets`` equal step ranges of ``horizon``, fewer when a range would hold
        fewer than ``min_bucket_scores`` (down to one pooled bucket)."""
        scores = conformity_scores(actual, lower, upper)
        step = np.asarray(steps, int)
        keep = np.isfinite(scores)
        scores, step = scores[keep], step[keep]
        for count in range(max(1, min(int(buckets), int(horizon))), 0, -1):
            starts = bucket_starts(horizon, count)
            index = bucket_index(starts, step)
            groups = [np.sort(scores[index == i]) for i in range(len(starts))]
            if count == 1 or min(len(g) for g in groups) >= min_bucket_scores:
                return cls(float(base_interval), tuple(tuple(float(s) for s in g) for g in groups), starts)
        raise AssertionError("unreachable")  # pragma: no cover - count == 1 always returns

    def describe(self, interval: float) -> str:
        """``"1–8: +0.01, 9–16: +0.12, 17+: +0.73"`` — each bucket's factor at ``interval``."""
        ends = [*(s - 1 for s in self.bucket_starts[1:]), None]
        return ", ".join(
            (f"{start}–{end}" if end is not None else f"{start}+") + f": {factor:+.3f}"
            for start, end, factor in zip(self.bucket_starts, ends, self.factors(interval), strict=True)
        )


def fit_calibrations(
    predictions: pd.DataFrame,
    base_interval: float,
    *,
    horizon: int,
    buckets: int = 3,
    min_bucket_scores: int = 20,
    by: Sequence[str] = ("sensor_type", "model"),
) -> dict[tuple[str, ...], IntervalCalibration]:
    """One calibration per group of *scored* validation predictions (the caller excludes missing and fault-window
    targets). Raises if the frame holds anything but validation folds."""
    roles = set(predictions["role"].unique()) if "role" in predictions else set()
    if roles - {"validation"}:
        raise ValueError(f"calibration must only see validation folds, got roles {sorted(roles)}")
    out: dict[tuple[str, ...], IntervalCalibration] = {}
    for key, group in predictions.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        out[tuple(str(k) for k in key)] = IntervalCalibration.fit(
            group["actual"], group["yhat_lower"], group["yhat_upper"], group["step"],
            base_interval=base_interval, horizon=horizon, buckets=buckets, min_bucket_scores=min_bucket_scores,
        )  # fmt: skip
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
        lower, upper = calibration.apply(
            rows["yhat"], rows["yhat_lower_raw"], rows["yhat_upper_raw"], interval, rows["step"]
        )
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
    factor per horizon bucket at ``interval`` (``cal_factors``, text) and ``cal_n`` (its number of validation
    scores), ``n`` points."""
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
                "cal_factors": calibration.describe(interval) if calibration is not None else "",
                "cal_n": float(calibration.n) if calibration is not None else 0.0,
                "n": float(len(group)),
            }
        )
    columns = [*by, "coverage", "coverage_raw", "width", "width_raw", "cal_factors", "cal_n", "n"]
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
            lower, upper = calibration.apply(group["yhat"], group[low_col], group[high_col], level, group["step"])
            records.append(
                dict(zip(by, key, strict=True))
                | {
                    "nominal": float(level),
                    "coverage": coverage(group["actual"], lower, upper),
                    "width": float(np.nanmean(upper - lower)),
                    "n": len(group),
                }
            )
    return pd.DataFrame(records, columns=[*by, "nominal", "coverage", "width", "n"])


__all__ = [
    "COVERAGE_LEVELS",
    "IntervalCalibration",
    "bucket_index",
    "bucket_starts",
    "calibrate_predictions",
    "conformity_scores",
    "coverage",
    "coverage_curve",
    "fit_calibrations",
    "interval_table",
]
