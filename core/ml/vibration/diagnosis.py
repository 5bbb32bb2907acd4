"""Bearing diagnosis without training, from the envelope spectrum.

The signal is band-passed around the resonance band (default 0.1–0.4·fs), its Hilbert envelope taken and the
envelope's spectrum averaged (Welch, Hann, ~1 Hz resolution when the recording is long enough). For each
candidate fault the characteristic impact rate is

* outer race: BPFO, * inner race: BPFI, * ball: 2·BSF (a ball spall strikes both races once per spin turn),

and for each of its first ``harmonics`` multiples the peak amplitude within ±1 % is divided by the noise floor
(median amplitude within ±25 % of the fundamental around that harmonic). A fault's score is the geometric mean of
these ratios (in dB: 20·log10).

The threshold is calibrated on the signal itself (constant-false-alarm style): the same score is computed at
``surrogates`` reference rates spread log-uniformly over 0.6–1.4 × the candidates' range, away (±3 %) from every
candidate rate; the detection threshold is the larger of ``threshold_db`` (default 6 dB) and the surrogates'
95th percentile + ``margin_db`` (default 3 dB). The fault with the highest score is named if it reaches that
threshold, otherwise the answer is ``none``. This keeps random peaks and lines unrelated to the bearing (shaft
harmonics in the envelope, electrical lines) from being named as defects.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import signal as sps

from core.ml.vibration.bearings import BearingGeometry, get_bearing
from core.ml.vibration.features import bandpass, envelope, harmonic_tolerance

CANDIDATES = {"outer race": "bpfo", "inner race": "bpfi", "ball": "bsf"}
DEFAULT_THRESHOLD_DB = 6.0
DEFAULT_MARGIN_DB = 3.0


@dataclass
class Diagnosis:
    fault: str  # "outer race" | "inner race" | "ball" | "none"
    scores_db: dict[str, float]  # per candidate fault
    harmonic_ratios: dict[str, list[float]]  # peak / floor per harmonic
    impact_rates: dict[str, float]  # Hz per candidate
    defect_frequencies: dict[str, float]  # bpfo/bpfi/bsf/ftf in Hz
    threshold_db: float  # the threshold applied (after calibration)
    surrogate_p95_db: float
    rpm: float
    fs: float
    bearing: str
    freqs: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    spectrum: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("freqs")
        out.pop("spectrum")
        return out


def averaged_envelope_spectrum(
    x: np.ndarray, fs: float, band: tuple[float, float] | None = None, resolution_hz: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Welch-averaged amplitude spectrum (sqrt of the PSD × bin width) of the band-passed signal's envelope."""
    env = envelope(bandpass(x, fs, band))
    env = env - env.mean()
    nperseg = min(len(env), 2 ** math.ceil(math.log2(fs / resolution_hz)))
    freqs, psd = sps.welch(env, fs=fs, window="hann", nperseg=nperseg, detrend="constant")
    return freqs, np.sqrt(psd * (freqs[1] - freqs[0]))


def harmonic_ratios(freqs: np.ndarray, spec: np.ndarray, f0: float, harmonics: int = 3) -> list[float]:
    """Peak / local noise floor at f0, 2·f0, …; NaN for a harmonic above the spectrum's range."""
    ratios = []
    for k in range(1, harmonics + 1):
        fk = k * f0
        tol = harmonic_tolerance(freqs, fk)
        peak_mask = (freqs >= fk - tol) & (freqs <= fk + tol)
        floor_mask = (np.abs(freqs - fk) <= 0.25 * f0) & ~peak_mask
        if not peak_mask.any() or floor_mask.sum() < 3 or fk + 0.25 * f0 > freqs[-1]:
            ratios.append(float("nan"))
            continue
        floor = float(np.median(spec[floor_mask]))
        ratios.append(float(spec[peak_mask].max() / floor) if floor > 0 else float("inf"))
    return ratios


def score_db(ratios: list[float]) -> float:
    """Geometric mean of the finite, positive harmonic ratios in dB (−inf when none)."""
    valid = [v for v in ratios if np.isfinite(v) and v > 0]
    return float(20 * np.mean(np.log10(valid))) if valid else float("-inf")


def surrogate_rates(rates: list[float], count: int = 60, exclusion: float = 0.03) -> NDArray[np.float64]:
    """Reference rates log-uniform over 0.6·min … 1.4·max of ``rates``, none within ±``exclusion`` of any."""
    grid = np.geomspace(0.6 * min(rates), 1.4 * max(rates), count * 3)
    keep = np.all([np.abs(grid / r - 1) > exclusion for r in rates], axis=0)
    grid = grid[keep]
    picked: NDArray[np.float64] = grid[np.linspace(0, len(grid) - 1, min(count, len(grid))).astype(int)]
    return picked


def diagnose(
    x: np.ndarray,
    fs: float,
    rpm: float,
    bearing: str | BearingGeometry = "6205",
    *,
    band: tuple[float, float] | None = None,
    harmonics: int = 3,
    threshold_db: float = DEFAULT_THRESHOLD_DB,
    margin_db: float = DEFAULT_MARGIN_DB,
    surrogates: int = 60,
) -> Diagnosis:
    """Name the most likely bearing fault of signal ``x`` (see the module doc)."""
    geometry = get_bearing(bearing)
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or len(x) < 4096:
        raise ValueError("diagnosis needs a 1-D signal of at least 4096 samples")
    defect_f = geometry.frequencies(rpm)
    freqs, spec = averaged_envelope_spectrum(x, fs, band)
    rates = {name: defect_f[key] * (2 if key == "bsf" else 1) for name, key in CANDIDATES.items()}
    ratios = {name: harmonic_ratios(freqs, spec, rate, harmonics) for name, rate in rates.items()}
    scores = {name: score_db(r) for name, r in ratios.items()}
    reference = [
        score_db(harmonic_ratios(freqs, spec, f, harmonics))
        for f in surrogate_rates(list(rates.values()), surrogates)
    ]
    reference = [v for v in reference if np.isfinite(v)]
    p95 = float(np.percentile(reference, 95)) if reference else float("-inf")
    applied = max(threshold_db, p95 + margin_db)
    best = max(scores, key=lambda k: scores[k])
    fault = best if scores[best] >= applied else "none"
    return Diagnosis(
        fault, scores, ratios, rates, defect_f, applied, p95, rpm, fs, geometry.name, freqs, spec
    )
