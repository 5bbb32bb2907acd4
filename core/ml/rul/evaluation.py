"""Engine-grouped evaluation of RUL models: splits by engine, test-like truncation, RMSE, the PHM08 score, and
split-conformal intervals with their empirical coverage.

* Splits are by **engine** (unit), never by row: :func:`engine_folds` deals the units into k folds (seeded); every
  fold's validation engines are disjoint from its training and calibration engines (asserted).
* :func:`truncate` turns run-to-failure trajectories into a test-like set the way the official C-MAPSS test files
  were made: each engine is cut at one point and the evaluation point is its last observed cycle, true RUL = the
  cycles removed. The true RUL is drawn uniformly from ``[min_rul, min(max_rul, life − min_cycles)]``; with the
  defaults (1…145, ≥ 31 cycles observed) this matches the range of the published FD001 test truth (7–145, mean 75.5:
  most engines are seen well before the cap of the target).
* :func:`phm08_score`: Σ (e^(−d/13) − 1) for d < 0, (e^(d/10) − 1) for d ≥ 0, d = predicted − true (late
  predictions cost more).
* :class:`ConformalCalibrator`: split-conformal interval on residuals (true − predicted) of calibration engines,
  Mondrian by bins of the predicted RUL (errors grow with the RUL): in each bin the interval is
  [ŷ + q_lo, ŷ + q_hi] with q_lo/q_hi the ⌊(n+1)·α/2⌋-th and ⌈(n+1)·(1 − α/2)⌉-th smallest residual of the bin, the
  lower bound clipped at 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

DEFAULT_MIN_RUL = 1
DEFAULT_MAX_RUL = 145
DEFAULT_MIN_CYCLES = 31


# --- metrics ------------------------------------------------------------------------------------------------------
def rmse(predicted: ArrayLike, true: ArrayLike) -> float:
    d = np.asarray(predicted, dtype=float) - np.asarray(true, dtype=float)
    return float(np.sqrt(np.mean(d * d)))


def phm08_terms(predicted: ArrayLike, true: ArrayLike) -> NDArray[np.float64]:
    """Each engine's PHM08 penalty: e^(−d/13) − 1 for d < 0 (early), e^(d/10) − 1 for d ≥ 0 (late)."""
    d = np.asarray(predicted, dtype=float) - np.asarray(true, dtype=float)
    return np.asarray(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0)), dtype=float)


def phm08_score(predicted: ArrayLike, true: ArrayLike) -> float:
    """The PHM08 challenge score (sum over engines; lower is better, 0 is perfect)."""
    return float(np.sum(phm08_terms(predicted, true)))


def coverage(lower: ArrayLike, upper: ArrayLike, true: ArrayLike) -> float:
    t = np.asarray(true, dtype=float)
    return float(np.mean((np.asarray(lower, dtype=float) <= t) & (t <= np.asarray(upper, dtype=float))))


def scores(predicted: ArrayLike, true: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> dict[str, float]:
    """``rmse``, ``phm08_score``, ``phm08_score_mean`` (per engine), ``coverage``, ``mean_width``, ``mae``, ``bias``."""
    p, t = np.asarray(predicted, dtype=float), np.asarray(true, dtype=float)
    lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    score = phm08_score(p, t)
    return {
        "rmse": rmse(p, t),
        "mae": float(np.mean(np.abs(p - t))),
        "bias": float(np.mean(p - t)),
        "phm08_score": score,
        "phm08_score_mean": score / max(len(t), 1),
        "coverage": coverage(lo, hi, t),
        "mean_width": float(np.mean(hi - lo)),
        "engines": float(len(t)),
    }


# --- splits -------------------------------------------------------------------------------------------------------
def engine_folds(units: Sequence[int] | ArrayLike, k: int, seed: int) -> list[NDArray[np.int64]]:
    """The distinct units dealt into ``k`` disjoint folds after a seeded shuffle."""
    distinct = np.unique(np.asarray(units, dtype=np.int64))
    if k < 2 or k > len(distinct):
        raise ValueError(f"{k} folds for {len(distinct)} engines")
    shuffled = np.random.default_rng(seed).permutation(distinct)
    return [np.sort(part) for part in np.array_split(shuffled, k)]


def split_off(
    units: Sequence[int] | ArrayLike, fraction: float, seed: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(kept, held)``: a seeded share ``fraction`` of the distinct units held back (at least one of each)."""
    distinct = np.unique(np.asarray(units, dtype=np.int64))
    if len(distinct) < 2:
        raise ValueError("at least two engines are needed to hold some back")
    n_held = min(len(distinct) - 1, max(1, round(fraction * len(distinct))))
    shuffled = np.random.default_rng(seed).permutation(distinct)
    return np.sort(shuffled[n_held:]), np.sort(shuffled[:n_held])


@dataclass(frozen=True)
class EngineSplit:
    """Disjoint engine sets of one evaluation: train (fit), calibration (conformal), validation (scored)."""

    train: NDArray[np.int64]
    calibration: NDArray[np.int64]
    validation: NDArray[np.int64]

    def __post_init__(self) -> None:
        sets = [set(self.train.tolist()), set(self.calibration.tolist()), set(self.validation.tolist())]
        if sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2]:
            raise ValueError("an engine is in two of train/calibration/validation")


def cv_splits(
    units: Sequence[int] | ArrayLike, k: int, repeats: int, calibration_fraction: float, seed: int
) -> list[tuple[int, int, EngineSplit]]:
    """``(repeat, fold, split)`` for ``repeats`` × ``k``-fold CV by engine; in each fold the engines outside the
    validation fold are split into training and calibration engines (seeded)."""
    out = []
    distinct = np.unique(np.asarray(units, dtype=np.int64))
    for r in range(repeats):
        for f, validation in enumerate(engine_folds(distinct, k, seed + 1000 * r)):
            rest = np.setdiff1d(distinct, validation)
            train, calibration = split_off(rest, calibration_fraction, seed + 1000 * r + f + 1)
            out.append((r, f, EngineSplit(train, calibration, validation)))
    return out


# --- truncation ---------------------------------------------------------------------------------------------------
def truncate(
    frame: pd.DataFrame,
    seed: int | Sequence[int],
    *,
    cuts_per_engine: int = 1,
    min_rul: int = DEFAULT_MIN_RUL,
    max_rul: int = DEFAULT_MAX_RUL,
    min_cycles: int = DEFAULT_MIN_CYCLES,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test-like trajectories from run-to-failure ones: ``(observed, truth)``. ``observed`` holds, per cut, the
    engine's cycles up to the cut under a new ``unit`` id (1, 2, … in order), with ``source_unit``; ``truth`` has
    ``unit``, ``source_unit``, ``last_cycle``, ``rul`` (true cycles remaining after the last observed one). An engine
    shorter than ``min_cycles + min_rul`` cycles is skipped."""
    rng = np.random.default_rng(seed)
    parts, rows = [], []
    new_unit = 0
    for unit, group in frame.groupby("unit", sort=True):
        life = int(group["cycle"].max())
        high = min(max_rul, life - min_cycles)
        if high < min_rul:
            continue
        for rul in rng.integers(min_rul, high + 1, size=cuts_per_engine):
            new_unit += 1
            last = life - int(rul)
            part = group[group["cycle"] <= last].assign(unit=new_unit, source_unit=int(unit))
            parts.append(part)
            rows.append({"unit": new_unit, "source_unit": int(unit), "last_cycle": last, "rul": int(rul)})
    if not parts:
        raise ValueError("no engine is long enough to truncate")
    return pd.concat(parts, ignore_index=True), pd.DataFrame(rows)


# --- conformal ----------------------------------------------------------------------------------------------------
def weighted_rank_quantiles(
    scores: NDArray[np.float64], weights: NDArray[np.float64] | None, alpha: float
) -> tuple[float, float]:
    """The conformal ``(lower, upper)`` quantiles of ``scores`` at ``alpha/2`` and ``1 − alpha/2``.

    Unweighted: the ⌊(n+1)·α/2⌋-th and ⌈(n+1)·(1 − α/2)⌉-th smallest score (−∞/+∞ when out of range). Weighted
    (one weight per score, e.g. 1 / cuts of its engine so that every engine weighs the same): the weighted
    quantiles at levels α/2 − (1 − α/2)/n and (1 − α/2)(1 + 1/n), n the effective sample size (Σw)²/Σw² — the
    same finite-sample inflation with engines, not cuts, as the exchangeable units."""
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    n = len(s)
    if weights is None:
        lo_rank = math.floor((n + 1) * alpha / 2)
        hi_rank = math.ceil((n + 1) * (1 - alpha / 2))
        lo_q = float(s[lo_rank - 1]) if lo_rank >= 1 else -math.inf
        return lo_q, float(s[hi_rank - 1]) if hi_rank <= n else math.inf
    w = weights[order]
    n_eff = float(w.sum() ** 2 / np.sum(w * w))
    cum = np.cumsum(w) / w.sum()
    hi_level = (1 - alpha / 2) * (1 + 1 / n_eff)
    lo_level = alpha / 2 - (1 - alpha / 2) / n_eff
    hi = float(s[min(int(np.searchsorted(cum, hi_level - 1e-12)), n - 1)]) if hi_level <= 1 else math.inf
    lo = float(s[min(int(np.searchsorted(cum, lo_level - 1e-12)), n - 1)]) if lo_level > 0 else -math.inf
    return lo, hi


@dataclass(frozen=True)
class ConformalCalibrator:
    """Mondrian split-conformal offsets per bin of the predicted RUL (see module docstring), optionally normalised:
    with ``scale`` = (a, b) the scores are residual / σ(ŷ), σ(ŷ) = max(a + b·ŷ, ``min_scale``), and the interval
    is [ŷ + σ(ŷ)·q_lo, ŷ + σ(ŷ)·q_hi] (the default (1, 0) is the plain residual)."""

    alpha: float
    edges: tuple[float, ...]
    """Inner bin edges on the predicted RUL (ascending; empty = one bin)."""
    q_lo: tuple[float, ...]
    q_hi: tuple[float, ...]
    counts: tuple[int, ...] = field(default=())
    scale: tuple[float, float] = (1.0, 0.0)
    min_scale: float = 1.0

    def sigma(self, predicted: ArrayLike) -> NDArray[np.float64]:
        a, b = getattr(self, "scale", (1.0, 0.0))  # models pickled before normalisation have no scale
        p = np.asarray(predicted, dtype=float)
        return np.asarray(np.maximum(a + b * p, getattr(self, "min_scale", 1.0)), dtype=float)

    @classmethod
    def fit(
        cls,
        predicted: ArrayLike,
        true: ArrayLike,
        alpha: float = 0.1,
        edges: Sequence[float] = (),
        min_bin: int = 30,
        *,
        weights: ArrayLike | None = None,
        scale: tuple[float, float] = (1.0, 0.0),
        min_scale: float = 1.0,
    ) -> ConformalCalibrator:
        """Offsets from calibration predictions; bins with fewer than ``min_bin`` residuals are merged into their
        neighbour (the last into the previous). ``weights``: see :func:`weighted_rank_quantiles`."""
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        p, t = np.asarray(predicted, dtype=float), np.asarray(true, dtype=float)
        if len(p) != len(t) or len(p) == 0:
            raise ValueError("calibration needs as many predictions as truths, at least one")
        w = None if weights is None else np.asarray(weights, dtype=float)
        if w is not None and (len(w) != len(p) or not np.all(w > 0)):
            raise ValueError("one positive weight per calibration prediction")
        kept = sorted(float(e) for e in edges)
        while kept:
            counts = np.bincount(np.searchsorted(kept, p, side="right"), minlength=len(kept) + 1)
            small = [i for i, n in enumerate(counts) if n < min_bin]
            if not small:
                break
            i = small[0]
            kept.pop(min(i, len(kept) - 1))
        unscaled = cls(float(alpha), (), (0.0,), (0.0,), (), (float(scale[0]), float(scale[1])), float(min_scale))
        score = (t - p) / unscaled.sigma(p)
        bins = np.searchsorted(kept, p, side="right")
        q_lo, q_hi, counts_out = [], [], []
        for b in range(len(kept) + 1):
            inside = bins == b
            lo, hi = weighted_rank_quantiles(score[inside], None if w is None else w[inside], alpha)
            q_lo.append(lo)
            q_hi.append(hi)
            counts_out.append(int(inside.sum()))
        return cls(float(alpha), tuple(kept), tuple(q_lo), tuple(q_hi), tuple(counts_out), unscaled.scale,
                   unscaled.min_scale)  # fmt: skip

    def interval(self, predicted: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        p = np.asarray(predicted, dtype=float)
        bins = np.searchsorted(np.asarray(self.edges, dtype=float), p, side="right")
        sigma = self.sigma(p)
        lo = p + sigma * np.asarray(self.q_lo)[bins]
        hi = p + sigma * np.asarray(self.q_hi)[bins]
        return np.maximum(lo, 0.0), np.maximum(hi, 0.0)

    def to_dict(self) -> dict[str, object]:
        return {"alpha": self.alpha, "edges": list(self.edges), "q_lo": list(self.q_lo), "q_hi": list(self.q_hi),
                "counts": list(self.counts), "scale": list(getattr(self, "scale", (1.0, 0.0))),
                "min_scale": getattr(self, "min_scale", 1.0)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ConformalCalibrator:
        def floats(key: str) -> tuple[float, ...]:
            return tuple(float(v) for v in data[key])  # type: ignore[attr-defined]

        scale = tuple(float(v) for v in data.get("scale", (1.0, 0.0)))  # type: ignore[attr-defined]
        return cls(
            float(data["alpha"]),  # type: ignore[arg-type]
            floats("edges"),
            floats("q_lo"),
            floats("q_hi"),
            tuple(int(v) for v in data.get("counts", ())),  # type: ignore[attr-defined]
            (scale[0], scale[1]),
            float(data.get("min_scale", 1.0)),  # type: ignore[arg-type]
        )


__all__ = [
    "ConformalCalibrator",
    "EngineSplit",
    "coverage",
    "cv_splits",
    "engine_folds",
    "phm08_score",
    "phm08_terms",
    "rmse",
    "scores",
    "split_off",
    "truncate",
    "weighted_rank_quantiles",
]
