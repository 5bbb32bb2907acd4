"""Vibration features of one window (1-D array, or the last axis of a 2-D array of windows).

Time domain (of the window with its mean removed, so that an accelerometer's DC offset does not count):
RMS, peak-to-peak, kurtosis (Pearson: 3 for a Gaussian), skewness, crest factor (peak / RMS).
Frequency domain (Hann-windowed one-sided amplitude spectrum): dominant frequency (largest bin above DC),
spectral centroid (power-weighted mean frequency), high-frequency energy (mean-square power above
``hf_cutoff``, by Parseval). Envelope: the window is band-passed (4th-order Butterworth, zero-phase) around the
structural resonance the defect impacts excite, its Hilbert envelope taken, and the envelope spectrum's energy
summed around the first ``harmonics`` multiples of each defect frequency (BPFO, BPFI, BSF, FTF).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import signal as sps

from core.ml.vibration.bearings import DEFECTS, BearingGeometry

TIME_FEATURES = ("rms", "peak_to_peak", "kurtosis", "skewness", "crest_factor")
SPECTRAL_FEATURES = ("dominant_frequency", "spectral_centroid", "hf_energy")
ENVELOPE_FEATURES = tuple(f"env_{d}" for d in DEFECTS)
FEATURE_COLUMNS = TIME_FEATURES + SPECTRAL_FEATURES + ENVELOPE_FEATURES


def _centered(x: np.ndarray) -> NDArray[np.float64]:
    values = np.asarray(x, dtype=float)
    mean: NDArray[np.float64] = values.mean(axis=-1, keepdims=True)
    return values - mean


def rms(x: np.ndarray) -> NDArray[np.float64]:
    level: NDArray[np.float64] = np.sqrt(np.mean(_centered(x) ** 2, axis=-1))
    return level


def peak_to_peak(x: np.ndarray) -> NDArray[np.float64]:
    span: NDArray[np.float64] = np.ptp(np.asarray(x, dtype=float), axis=-1)
    return span


def kurtosis(x: np.ndarray) -> NDArray[np.float64]:
    c = _centered(x)
    m2: NDArray[np.float64] = np.mean(c**2, axis=-1)
    m4: NDArray[np.float64] = np.mean(c**4, axis=-1)
    return m4 / np.where(m2 > 0, m2**2, np.nan)


def skewness(x: np.ndarray) -> NDArray[np.float64]:
    c = _centered(x)
    m2: NDArray[np.float64] = np.mean(c**2, axis=-1)
    m3: NDArray[np.float64] = np.mean(c**3, axis=-1)
    return m3 / np.where(m2 > 0, m2**1.5, np.nan)


def crest_factor(x: np.ndarray) -> NDArray[np.float64]:
    c = _centered(x)
    r = np.sqrt(np.mean(c**2, axis=-1))
    peak: NDArray[np.float64] = np.max(np.abs(c), axis=-1)
    return peak / np.where(r > 0, r, np.nan)


def amplitude_spectrum(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided amplitude spectrum with a Hann window (a sine of amplitude A shows a peak ≈ A)."""
    c = _centered(x)
    n = c.shape[-1]
    win = np.hanning(n)
    spec = np.abs(np.fft.rfft(c * win, axis=-1)) * 2.0 / win.sum()
    return np.fft.rfftfreq(n, 1.0 / fs), spec


def dominant_frequency(x: np.ndarray, fs: float) -> NDArray[np.float64]:
    freqs, spec = amplitude_spectrum(x, fs)
    peaks: NDArray[np.float64] = freqs[1:][np.argmax(spec[..., 1:], axis=-1)]
    return peaks


def spectral_centroid(x: np.ndarray, fs: float) -> NDArray[np.float64]:
    freqs, spec = amplitude_spectrum(x, fs)
    power = spec**2
    total = power.sum(axis=-1)
    weighted: NDArray[np.float64] = (power * freqs).sum(axis=-1)
    return weighted / np.where(total > 0, total, np.nan)


def hf_energy(x: np.ndarray, fs: float, cutoff: float | None = None) -> NDArray[np.float64]:
    """Mean-square power above ``cutoff`` Hz (default fs/4): Parseval on the plain (rectangular) FFT."""
    c = _centered(x)
    n = c.shape[-1]
    cutoff = fs / 4 if cutoff is None else cutoff
    power = np.abs(np.fft.rfft(c, axis=-1)) ** 2 / n**2
    power[..., 1:] *= 2.0
    if n % 2 == 0:
        power[..., -1] /= 2.0
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    high: NDArray[np.float64] = power[..., freqs >= cutoff].sum(axis=-1)
    return high


def default_band(fs: float) -> tuple[float, float]:
    """Default envelope band: 0.1·fs to 0.4·fs (2–8 kHz for IMS at 20 kHz, 1.2–4.8 kHz for CWRU at 12 kHz)."""
    return 0.1 * fs, 0.4 * fs


def bandpass(x: np.ndarray, fs: float, band: tuple[float, float] | None = None, order: int = 4) -> NDArray[np.float64]:
    lo, hi = band or default_band(fs)
    if not 0 < lo < hi < fs / 2:
        raise ValueError(f"band {lo}–{hi} Hz must lie inside (0, {fs / 2}) Hz")
    sos = sps.butter(order, [lo, hi], btype="bandpass", fs=fs, output="sos")
    filtered: NDArray[np.float64] = sps.sosfiltfilt(sos, np.asarray(x, dtype=float), axis=-1)
    return filtered


def envelope(x: np.ndarray) -> NDArray[np.float64]:
    """Hilbert envelope |analytic signal| of an (already band-passed) signal."""
    analytic: NDArray[np.complex128] = sps.hilbert(np.asarray(x, dtype=float), axis=-1)
    return np.abs(analytic)


def envelope_spectrum(
    x: np.ndarray, fs: float, band: tuple[float, float] | None = None, *, filtered: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude spectrum of the Hilbert envelope of ``x`` band-passed to ``band`` (skip the filter when
    ``filtered``). Impacts repeating at f give peaks at f and its harmonics."""
    y = np.asarray(x, dtype=float) if filtered else bandpass(x, fs, band)
    return amplitude_spectrum(envelope(y), fs)


def harmonic_tolerance(freqs: np.ndarray, f0: float) -> float:
    """Search half-width around a (harmonic of a) defect frequency: 1 % of it, at least 1.5 bins (speed
    fluctuation and rolling-element slip move real defect lines by about 1 %)."""
    df: float = freqs[1] - freqs[0]
    return max(0.01 * f0, 1.5 * df)


def band_energy(freqs: np.ndarray, spec: np.ndarray, f0: float, harmonics: int = 3) -> np.ndarray:
    """Sum of squared envelope-spectrum amplitudes within ±tolerance of f0, 2·f0, …, harmonics·f0."""
    total = np.zeros(spec.shape[:-1])
    for k in range(1, harmonics + 1):
        fk = k * f0
        tol = harmonic_tolerance(freqs, fk)
        mask = (freqs >= fk - tol) & (freqs <= fk + tol)
        if mask.any():
            total = total + (spec[..., mask] ** 2).sum(axis=-1)
    return total


def sliding_windows(x: np.ndarray, window: int = 2048, overlap: float = 0.5) -> np.ndarray:
    """Windows of a 1-D signal as a 2-D array (n_windows, window); step = window·(1 − overlap)."""
    if not 0 <= overlap < 1:
        raise ValueError("overlap must be in [0, 1)")
    x = np.asarray(x, dtype=float)
    step = max(1, round(window * (1 - overlap)))
    if x.shape[-1] < window:
        raise ValueError(f"signal of {x.shape[-1]} samples is shorter than one window ({window})")
    starts = np.arange(0, x.shape[-1] - window + 1, step)
    return np.stack([x[s : s + window] for s in starts])


def window_features(
    data: np.ndarray,
    fs: float,
    geometry: BearingGeometry,
    rpm: float,
    *,
    window: int = 2048,
    overlap: float = 0.5,
    band: tuple[float, float] | None = None,
    hf_cutoff: float | None = None,
    harmonics: int = 3,
) -> pd.DataFrame:
    """Feature table of a recording (samples, channels) or a 1-D signal: one row per channel and window with
    columns ``channel``, ``window``, then :data:`FEATURE_COLUMNS`. The band-pass runs on the whole channel
    before windowing (no filter transients at window edges)."""
    data = np.asarray(data, dtype=float)
    if data.ndim == 1:
        data = data[:, None]
    defect_f = geometry.frequencies(rpm)
    frames = []
    for ch in range(data.shape[1]):
        w = sliding_windows(data[:, ch], window, overlap)
        wf = sliding_windows(bandpass(data[:, ch], fs, band), window, overlap)
        freqs, env = envelope_spectrum(wf, fs, filtered=True)
        cols: dict[str, np.ndarray] = {
            "rms": rms(w),
            "peak_to_peak": peak_to_peak(w),
            "kurtosis": kurtosis(w),
            "skewness": skewness(w),
            "crest_factor": crest_factor(w),
            "dominant_frequency": dominant_frequency(w, fs),
            "spectral_centroid": spectral_centroid(w, fs),
            "hf_energy": hf_energy(w, fs, hf_cutoff),
        }
        for d in DEFECTS:
            cols[f"env_{d}"] = band_energy(freqs, env, defect_f[d], harmonics)
        frame = pd.DataFrame(cols)
        frame.insert(0, "window", np.arange(len(frame)))
        frame.insert(0, "channel", ch)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
