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
    """Mean of ``x[max(0, i - window + 1) : i + 1]`` for every i (along axis 0; ``x`` 1-D or 2-D)."""
    x = np.asarray(x, dtype=float)
    c = np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(x, axis=0)])
    i = np.arange(1, len(x) + 1)
    start = np.maximum(0, i - window)
    n = (i - start).reshape(-1, *([1] * (x.ndim - 1)))
    return np.asarray((c[i] - c[start]) / n, dtype=float)


def trailing_slope(x: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    """Least-squares slope (per cycle) of ``x`` over the same trailing windows (along axis 0); 0 with fewer than
    2 points."""
    x = np.asarray(x, dtype=float)
    shape = (-1, *([1] * (x.ndim - 1)))
    t = np.arange(len(x), dtype=float).reshape(shape)
    zero = np.zeros((1, *x.shape[1:]))
    i = np.arange(1, len(x) + 1)
    start = np.maximum(0, i - window)
    n = (i - start).astype(float).reshape(shape)

    def windowed(v: NDArray[np.float64]) -> NDArray[np.float64]:
        c = np.concatenate([np.zeros((1, *v.shape[1:])), np.cumsum(v, axis=0)])
        return np.asarray(c[i] - c[start], dtype=float)

    st, stt = windowed(t + zero), windowed(t * t + zero)
    sx, stx = windowed(x), windowed(t * x)
    denom = n * stt - st * st
    safe = np.where(denom > 0, denom, 1.0)
    return np.asarray(np.where(denom > 0, (n * stx - st * sx) / safe, 0.0), dtype=float)


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
    per_channel = len(mean_windows) + len(slope_windows)
    out = np.empty((len(data), len(channels), per_channel), dtype=float)
    units = data["unit"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, units[1:] != units[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        x = values[a:b]
        for k, w in enumerate(mean_windows):
            out[a:b, :, k] = trailing_mean(x, w)
        for k, w in enumerate(slope_windows):
            out[a:b, :, len(mean_windows) + k] = trailing_slope(x, w)
    result = pd.DataFrame(out.reshape(len(data), len(names)), columns=names)
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
