"""Cycle features of a trajectory: per channel, trailing means and least-squares slopes over the last cycles.

Each row of a trajectory (one unit, one cycle) becomes one feature row computed from that cycle and the ones
before it only — never from later cycles, so a feature row at cycle c is what a model sees when the asset has
lived c cycles. Windows shorter than their length at the start of a trajectory use the cycles available (a mean
of one value, a slope of 0 for fewer than two).

Channels are standardised first with the training data's mean and standard deviation (:class:`Scaler`, stored in
the model), so features are in units of the channel's spread in the training fleet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

DEFAULT_MEAN_WINDOWS: tuple[int, ...] = (5, 15, 30)
DEFAULT_SLOPE_WINDOWS: tuple[int, ...] = (15, 30)


@dataclass(frozen=True)
class Scaler:
    """Per-channel mean and standard deviation (a constant channel gets std 1)."""

    mean: dict[str, float]
    std: dict[str, float]

    @classmethod
    def fit(cls, frame: pd.DataFrame, channels: Sequence[str]) -> Scaler:
        mean = {c: float(frame[c].mean()) for c in channels}
        std = {c: float(frame[c].std(ddof=0)) for c in channels}
        return cls(mean, {c: (s if s > 1e-12 else 1.0) for c, s in std.items()})

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        for c, m in self.mean.items():
            out[c] = (frame[c].astype(float) - m) / self.std[c]
        return out


def trailing_mean(x: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    """Mean of ``x[max(0, i - window + 1) : i + 1]`` for every i."""
    c = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(1, len(x) + 1)
    start = np.maximum(0, i - window)
    return np.asarray((c[i] - c[start]) / (i - start), dtype=float)


def trailing_slope(x: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    """Least-squares slope (per cycle) of ``x`` over the same trailing windows; 0 with fewer than 2 points."""
    n_all = len(x)
    t = np.arange(n_all, dtype=float)
    sums = [np.concatenate([[0.0], np.cumsum(v)]) for v in (t, x, t * x, t * t)]
    i = np.arange(1, n_all + 1)
    start = np.maximum(0, i - window)
    n = (i - start).astype(float)
    st, sx, stx, stt = (s[i] - s[start] for s in sums)
    denom = n * stt - st * st
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(denom > 0, (n * stx - st * sx) / np.where(denom > 0, denom, 1.0), 0.0)
    return np.asarray(slope, dtype=float)


def feature_names(
    channels: Sequence[str],
    mean_windows: Sequence[int] = DEFAULT_MEAN_WINDOWS,
    slope_windows: Sequence[int] = DEFAULT_SLOPE_WINDOWS,
) -> list[str]:
    names = []
    for c in channels:
        names += [f"{c}_mean{w}" for w in mean_windows] + [f"{c}_slope{w}" for w in slope_windows]
    return names


def cycle_features(
    frame: pd.DataFrame,
    channels: Sequence[str],
    scaler: Scaler,
    mean_windows: Sequence[int] = DEFAULT_MEAN_WINDOWS,
    slope_windows: Sequence[int] = DEFAULT_SLOPE_WINDOWS,
) -> pd.DataFrame:
    """One feature row per row of ``frame`` (columns ``unit``, ``cycle`` and ``channels``; any order), in the order
    of ``frame`` sorted by unit then cycle, with ``unit`` and ``cycle`` kept. Raises ValueError on a missing channel
    or a non-finite value."""
    missing = [c for c in ("unit", "cycle", *channels) if c not in frame.columns]
    if missing:
        raise ValueError(f"trajectory lacks the columns {missing}")
    data = frame.sort_values(["unit", "cycle"], kind="stable").reset_index(drop=True)
    scaled = scaler.transform(data.loc[:, list(channels)])
    values = scaled.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError("trajectory has missing or non-finite channel values")
    names = feature_names(channels, mean_windows, slope_windows)
    out = np.empty((len(data), len(names)), dtype=float)
    units = data["unit"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, units[1:] != units[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        col = 0
        for j in range(len(channels)):
            x = values[a:b, j]
            for w in mean_windows:
                out[a:b, col] = trailing_mean(x, w)
                col += 1
            for w in slope_windows:
                out[a:b, col] = trailing_slope(x, w)
                col += 1
    result = pd.DataFrame(out, columns=names)
    result.insert(0, "cycle", data["cycle"].to_numpy())
    result.insert(0, "unit", units)
    return result


__all__ = [
    "DEFAULT_MEAN_WINDOWS",
    "DEFAULT_SLOPE_WINDOWS",
    "Scaler",
    "cycle_features",
    "feature_names",
    "trailing_mean",
    "trailing_slope",
]
