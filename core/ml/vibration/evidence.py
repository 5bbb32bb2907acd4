"""Evidence of each bearing-fault family in a squared envelope spectrum (SES).

For a family with nominal impact rate f0 (outer race: BPFO; inner race: BPFI; ball: 2·BSF, a ball spall striking
both races once per spin turn) the SES of a defect shows a comb of lines at k·f0. Real rates differ from the
kinematic ones (speed read once per record, rolling elements slip by 1–2 %), so the comb is fitted: a common scale
α within ±``slip`` (1 % for the races, 2 % for the ball, whose spin slips most) is chosen to maximise the comb's
mean line-to-floor ratio. Each line is the largest SES value within ±1 bin of k·α·f0; its floor is the median SES
within ±``floor_hz`` (a fifth of the lowest candidate rate) of k·f0 -- a running median, robust to the few
bins of the line itself. The **harmonic score** is the mean of the
first ``harmonics`` line-to-floor ratios in dB (a geometric mean of the ratios).

Sidebands confirm the family's kinematics:

* inner race: the spall turns with the shaft through the load zone, so its impacts are amplitude-modulated at
  the shaft frequency fr: lines at k·BPFI ± fr;
* ball: the ball's spall enters the load zone at the cage speed: lines at k·2·BSF ± FTF;
* outer race: a stationary spall in the load zone is not modulated; no sideband test.

The **sideband score** is the mean dB ratio of the first two harmonics' ± sidebands, located relative to the
fitted lines. Comb lines that coincide with a line of another family (within the slip window; e.g. 3·BPFO and
2·BPFI are 0.7 % apart for the SKF 6205) are still measured, but the decision rule only names a family that wins
by a margin, so a shared line alone cannot decide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import median_filter

#: family → (defect frequency key, multiple of it that is the impact rate, sideband modulation key or None)
FAMILIES: dict[str, tuple[str, float, str | None]] = {
    "outer race": ("bpfo", 1.0, None),
    "inner race": ("bpfi", 1.0, "shaft"),
    "ball": ("bsf", 2.0, "ftf"),
}
SLIP = {"outer race": 0.01, "inner race": 0.01, "ball": 0.02}


@dataclass
class FamilyEvidence:
    """Evidence of one family: nominal and fitted rate (Hz), line-to-floor ratios (dB) per harmonic and per
    sideband (k=1 −, k=1 +, k=2 −, k=2 +), and the two scores (dB)."""

    rate_hz: float
    fitted_rate_hz: float
    harmonics_db: list[float]
    sidebands_db: list[float] = field(default_factory=list)
    harmonic_score_db: float = float("-inf")
    sideband_score_db: float | None = None


class SpectrumView:
    """An SES in dB with fast line and floor look-ups. The floor is a running median over ±``floor_hz``
    (computed once); frequencies whose window leaves the spectrum have no floor (NaN)."""

    def __init__(self, freqs: NDArray[np.float64], amplitude: NDArray[np.float64], floor_hz: float,
                 fmax: float | None = None) -> None:  # fmt: skip
        self.df = float(freqs[1] - freqs[0])
        if fmax is not None:
            stop = min(len(freqs), int(math.ceil((fmax + floor_hz) / self.df)) + 2)
            freqs, amplitude = freqs[:stop], amplitude[:stop]
        self.freqs = freqs
        tiny = max(float(np.max(amplitude)) * 1e-12, 1e-300)
        self.db: NDArray[np.float64] = 20 * np.log10(np.maximum(amplitude, tiny))
        self.fmax = float(freqs[-1])
        self.floor_hz = max(floor_hz, 6 * self.df)
        width = 2 * int(round(self.floor_hz / self.df)) + 1
        self.baseline: NDArray[np.float64] = median_filter(self.db, size=width, mode="nearest")

    def line(self, f: float | NDArray[np.float64]) -> NDArray[np.float64]:
        """Largest dB value within ±1 bin of each frequency in ``f`` (−inf outside the spectrum)."""
        idx = np.rint(np.atleast_1d(np.asarray(f, dtype=float)) / self.df).astype(int)
        out = np.full(idx.shape, -np.inf)
        ok = (idx >= 1) & (idx < len(self.db) - 1)
        i = idx[ok]
        out[ok] = np.maximum(np.maximum(self.db[i - 1], self.db[i]), self.db[i + 1])
        return out

    def floor(self, f: float | NDArray[np.float64]) -> NDArray[np.float64]:
        """Running-median floor (dB) at each frequency; NaN where the median window leaves the spectrum."""
        fa = np.atleast_1d(np.asarray(f, dtype=float))
        out = np.full(fa.shape, np.nan)
        ok = (fa - self.floor_hz > 0) & (fa + self.floor_hz <= self.fmax)
        out[ok] = self.baseline[np.rint(fa[ok] / self.df).astype(int)]
        return out


def comb_evidence(view: SpectrumView, f0: float, *, harmonics: int = 3, slip: float = 0.01,
                  ) -> tuple[float, list[float], float]:  # fmt: skip
    """Fit the comb k·α·f0 (|α − 1| ≤ slip): (fitted f0, dB ratio per harmonic, harmonic score in dB).
    Harmonics beyond the spectrum count as missing (NaN) and are left out of the score."""
    ks = np.arange(1, harmonics + 1, dtype=float)
    floors = view.floor(ks * f0)
    valid = np.isfinite(floors)
    if not valid.any():
        return f0, [float("nan")] * harmonics, float("-inf")
    steps = max(3, 2 * int(math.ceil(slip * harmonics * f0 / view.df)) + 1)
    alphas = 1.0 + np.linspace(-slip, slip, steps)
    lines = view.line(np.outer(alphas, ks * f0).ravel()).reshape(len(alphas), len(ks))
    ratios = lines - floors[None, :]
    scores = ratios[:, valid].mean(axis=1)
    best = int(np.argmax(scores))
    per_k = [float(v) if ok else float("nan") for v, ok in zip(ratios[best], valid, strict=True)]
    return float(alphas[best] * f0), per_k, float(scores[best])


def sideband_evidence(view: SpectrumView, fitted: float, modulation: float, orders: int = 2) -> list[float]:
    """dB ratios of the lines at k·fitted ± modulation (k = 1…orders; order −, + per k) to the local floor."""
    freqs = np.array([k * fitted + sign * modulation for k in range(1, orders + 1) for sign in (-1, 1)])
    return [float(v) for v in view.line(freqs) - view.floor(freqs)]


def family_evidence(view: SpectrumView, defect_f: dict[str, float], shaft_hz: float, *,
                    harmonics: int = 3) -> dict[str, FamilyEvidence]:  # fmt: skip
    """Evidence of every family in :data:`FAMILIES` for kinematic defect frequencies ``defect_f``."""
    out: dict[str, FamilyEvidence] = {}
    for name, (key, multiple, modulation) in FAMILIES.items():
        rate = defect_f[key] * multiple
        fitted, per_k, score = comb_evidence(view, rate, harmonics=harmonics, slip=SLIP[name])
        ev = FamilyEvidence(rate, fitted, per_k, harmonic_score_db=score)
        if modulation is not None:
            mod = shaft_hz if modulation == "shaft" else defect_f["ftf"]
            ev.sidebands_db = sideband_evidence(view, fitted, mod)
            finite = [v for v in ev.sidebands_db if np.isfinite(v)]
            ev.sideband_score_db = float(np.mean(finite)) if finite else None
        out[name] = ev
    return out


def sideband_rates(defect_f: dict[str, float], shaft_hz: float) -> list[float]:
    """The sideband lines of the families' patterns: BPFI ± 1, 2 × fr; 2·BSF ± FTF; BPFO ± fr."""
    out = [defect_f["bpfi"] + n * shaft_hz for n in (-2, -1, 1, 2)]
    out += [2 * defect_f["bsf"] + s * defect_f["ftf"] for s in (-1, 1)]
    out += [defect_f["bpfo"] + s * shaft_hz for s in (-1, 1)]
    return [f for f in out if f > 0]


def surrogate_rates(rates: list[float], count: int = 60, exclusion: float = 0.03, shaft_hz: float | None = None,
                    avoid: list[float] | None = None) -> NDArray[np.float64]:  # fmt: skip
    """Reference rates log-uniform over 0.6·min … 1.4·max of ``rates``, none within ±``exclusion`` of a rate
    or of k/j times it (j, k ≤ 3: where a true comb would still be partly caught), nor, with ``shaft_hz``, within
    ±2 % of an integer multiple of the shaft frequency (lines of shaft harmonics are a known, non-bearing source
    that the candidates, at non-integer orders, do not share), nor within ±``exclusion`` of a rate in ``avoid``
    (the candidates' sideband lines: a comb at BPFI − fr catches the inner-race pattern's own lattice)."""
    grid = np.geomspace(0.6 * min(rates), 1.4 * max(rates), count * 4)
    keep = np.ones(len(grid), dtype=bool)
    for r in rates:
        for k in (1, 2, 3):
            for j in (1, 2, 3):
                keep &= np.abs(grid * j / (k * r) - 1) > exclusion
    for r in avoid or []:
        keep &= np.abs(grid / r - 1) > exclusion
    if shaft_hz:
        orders = grid / shaft_hz
        keep &= np.abs(orders - np.round(orders)) > 0.02 * orders
    grid = grid[keep]
    picked: NDArray[np.float64] = grid[np.linspace(0, len(grid) - 1, min(count, len(grid))).astype(int)]
    return picked
