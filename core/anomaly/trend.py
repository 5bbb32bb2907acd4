"""Degradation against a healthy reference (method ``trend_ewma``): pure functions, no I/O.

The outlier baseline (``robust_z``) compares a reading with the sensor's recent past, so a slow rise becomes the
new normal within its window. The degradation detector compares the sensor's *level* with its healthy reference
(``core.anomaly.references``: median and robust scale learned on its first readings, re-centred after a regime
change or a repair), which does not move while the machine wears:

    z_i = clip((x_i − median_ref) / scale_ref, −8, 8)
    e_i = λ·z_i + (1 − λ)·e_{i−1}          (EWMA, e starts at the first z after the reference is ready)

A reading is flagged when ``e_i`` crosses ``threshold`` in the type's degradation direction (``up``: e ≥ t;
``down``: e ≤ −t; ``both``: |e| ≥ t); its score is |e| in reference scales. The clipping bounds what a single
spike can do (one reading moves e by at most 0.8 at λ = 0.1), and the EWMA integrates a sustained shift: with
λ = 0.1 and t = 4, a step of 5 reference scales is flagged after ~16 readings, one of 8 after ~7, while AR(1)
noise of a healthy sensor (|e| mostly < 2) stays quiet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHOD = "trend_ewma"
CLIP = 8.0


@dataclass(frozen=True, slots=True)
class TrendResult:
    ewma: np.ndarray
    flagged: np.ndarray
    last: float | None


def standardise(values: np.ndarray, median: float, scale: float) -> np.ndarray:
    return np.clip((np.asarray(values, dtype=float) - median) / scale, -CLIP, CLIP)


def ewma(z: np.ndarray, lam: float, start: float | None) -> np.ndarray:
    """``e_i = lam·z_i + (1 − lam)·e_{i−1}`` with ``e_{−1} = start`` (``z_0`` when None).

    The recurrence of ``scipy.signal.lfilter([lam], [1, −(1 − lam)], z, zi=[(1 − lam)·e_{−1}])`` with the same
    floating-point operations in the same order (bit for bit the same result), written out so that the process
    scoring readings does not import scipy (~0.8 s and ~60 MB) for a first-order filter; a batch holds at most a
    few thousand readings per sensor, a few hundred microseconds here.
    """
    if z.size == 0:
        return np.zeros(0)
    decay = 1.0 - lam
    carry = decay * (float(z[0]) if start is None else float(start))
    out: list[float] = []
    append = out.append
    for value in z.tolist():
        level = carry + lam * value
        append(level)
        carry = decay * level
    return np.array(out, dtype=float)


def flags(e: np.ndarray, threshold: float, direction: str) -> np.ndarray:
    if direction == "up":
        return e >= threshold
    if direction == "down":
        return e <= -threshold
    magnitude: np.ndarray = np.abs(e)
    return magnitude >= threshold


def score(
    values: np.ndarray,
    *,
    median: float,
    scale: float,
    lam: float,
    threshold: float,
    direction: str,
    start: float | None,
) -> TrendResult:
    """The EWMA and flags of ``values`` (in time order) continuing from ``start``."""
    e = ewma(standardise(values, median, scale), lam, start)
    return TrendResult(e, flags(e, threshold, direction), float(e[-1]) if e.size else start)


__all__ = ["CLIP", "METHOD", "TrendResult", "ewma", "flags", "score", "standardise"]
