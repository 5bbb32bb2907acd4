"""Fast kurtogram (Antoni 2007) on the FFT, band-limited complex envelopes and the squared envelope spectrum.

The fast kurtogram looks for the frequency band in which a signal is most impulsive. Its grid is Antoni's 1/3-binary
tree: level ``k`` splits [0, fs/2] into 2^k bands of width fs / 2^(k+1), level ``k + 0.6`` into 3·2^(k−1) bands of
width fs / (3·2^k). For every band the complex envelope c(t) (the analytic band signal shifted to base band) is
computed and its spectral kurtosis

    SK = E|c|⁴ / (E|c|²)² − 2

taken: 0 for stationary Gaussian noise, large when the band holds repetitive transients such as bearing impacts
ringing a structural resonance. Antoni computes the envelopes with a decimated tree of quasi-analytic filters;
here each band is cut directly out of the signal's FFT with a raised-cosine (Tukey) taper and brought back with
an inverse FFT of only the band's bins, which gives the same decimated envelopes (critically sampled, cost about
one FFT of the record per level) with sharper band edges.

Only bands wide enough to carry the envelope frequencies of interest are searched (``min_bandwidth``): a band of
width B passes envelope modulations up to B, so diagnosing the third harmonic of BPFI with its shaft sidebands needs
B ≳ 3·BPFI + shaft frequency. Without this bound the kurtogram tends to pick very narrow bands in which the
envelope cannot show the fault rate at all.

:func:`squared_envelope_spectrum` then gives the squared envelope spectrum (SES) of the chosen band: the
band's complex envelope is re-synthesised at twice its bandwidth (so that |c|² is not aliased), squared, and its
spectrum averaged (Welch, Hann) at the requested resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft
from scipy import signal as sps


@dataclass(frozen=True)
class Band:
    """One cell of the kurtogram: ``level`` (0, 1, 1.6, 2, 2.6, …), band ``[low, high]`` in Hz, its SK."""

    level: float
    low: float
    high: float
    kurtosis: float

    @property
    def center(self) -> float:
        return 0.5 * (self.low + self.high)

    @property
    def width(self) -> float:
        return self.high - self.low


@dataclass
class Kurtogram:
    """SK per level and band (``rows[level]`` = SK of its bands, low to high frequency) and the best band."""

    fs: float
    levels: list[float]
    rows: list[NDArray[np.float64]]
    best: Band

    def as_image(self, width: int = 768) -> NDArray[np.float64]:
        """The kurtogram as a (levels, width) image over 0…fs/2, for plotting."""
        image = np.zeros((len(self.rows), width))
        for i, row in enumerate(self.rows):
            idx = np.minimum((np.arange(width) * len(row)) // width, len(row) - 1)
            image[i] = row[idx]
        return image


def _taper(n: int, alpha: float = 0.1) -> NDArray[np.float64]:
    window: NDArray[np.float64] = sps.windows.tukey(n, alpha) if n > 2 else np.ones(n)
    return window


def grid(fs: float, max_level: int) -> list[tuple[float, int]]:
    """Levels of the 1/3-binary tree with their band counts: (0, 1), (1, 2), (1.6, 3), (2, 4), (2.6, 6), …"""
    out: list[tuple[float, int]] = [(0.0, 1)]
    for k in range(1, max_level + 1):
        out.append((float(k), 2**k))
        if k < max_level:
            out.append((k + 0.6, 3 * 2 ** (k - 1)))
    return out


def band_envelope(spectrum: NDArray[np.complex128], n: int, fs: float, low: float, high: float,
                  oversample: int = 1) -> NDArray[np.complex128]:  # fmt: skip
    """Complex envelope of the band [low, high] Hz from the one-sided FFT ``spectrum`` of a real signal of
    ``n`` samples, sampled at ``oversample`` × the bandwidth (a tapered cut of the band's bins, inverse FFT)."""
    df = fs / n
    i0 = max(int(math.floor(low / df)), 0)
    i1 = min(int(math.ceil(high / df)), len(spectrum) - 1)
    bins = spectrum[i0 : i1 + 1] * _taper(i1 - i0 + 1)
    m = sfft.next_fast_len(len(bins) * oversample)
    c: NDArray[np.complex128] = sfft.ifft(bins, m) * (m / n)
    return c


def spectral_kurtosis(c: NDArray[np.complex128]) -> float:
    """SK of a complex envelope: E|c|⁴ / (E|c|²)² − 2 (0 for complex Gaussian noise)."""
    p = np.abs(c) ** 2
    m2 = float(p.mean())
    return float((p**2).mean() / m2**2 - 2.0) if m2 > 0 else 0.0


def fast_kurtogram(x: np.ndarray, fs: float, *, max_level: int | None = None,
                   min_bandwidth: float = 0.0) -> Kurtogram:  # fmt: skip
    """The fast kurtogram of ``x`` (see the module doc); bands narrower than ``min_bandwidth`` Hz are not
    searched (levels down to ``max_level``, default: as deep as ``min_bandwidth`` and a 64-sample envelope
    allow). Raises ValueError when not even the full band is wide enough."""
    x = np.asarray(x, dtype=float)
    x = x - x.mean()
    n = len(x)
    if min_bandwidth > fs / 2:
        raise ValueError(f"min_bandwidth {min_bandwidth} Hz exceeds the Nyquist frequency {fs / 2} Hz")
    spectrum = np.fft.rfft(x)
    if max_level is None:
        deepest = math.log2(fs / 2 / max(min_bandwidth, 1e-9))
        by_length = math.log2(max(n / 2 / 64, 1.0))
        max_level = max(0, int(math.floor(min(deepest, by_length, 10))))
    levels: list[float] = []
    rows: list[NDArray[np.float64]] = []
    best = Band(0.0, 0.0, fs / 2, -math.inf)
    for level, count in grid(fs, max_level):
        width = fs / 2 / count
        if width < min_bandwidth:
            continue
        row = np.array(
            [spectral_kurtosis(band_envelope(spectrum, n, fs, i * width, (i + 1) * width)) for i in range(count)]
        )
        levels.append(level)
        rows.append(row)
        i = int(np.argmax(row))
        if row[i] > best.kurtosis:
            best = Band(level, i * width, (i + 1) * width, float(row[i]))
    return Kurtogram(fs, levels, rows, best)


def squared_envelope_spectrum(x: np.ndarray, fs: float, band: tuple[float, float] | None = None, *,
                              resolution_hz: float = 0.5, min_segments: int = 4,
                              spectrum: NDArray[np.complex128] | None = None,
                              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """Squared envelope spectrum of ``x`` in ``band`` (default the full band): frequencies (Hz, up to the band
    width) and the Welch-averaged amplitude of |c|² (mean removed). The resolution is ``resolution_hz`` when the
    record holds ``min_segments`` half-overlapping segments of that length, coarser otherwise. ``spectrum`` (the
    one-sided FFT of ``x``) may be passed to avoid recomputing it."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    low, high = band or (0.0, fs / 2)
    spec = np.fft.rfft(x - x.mean()) if spectrum is None else spectrum
    c = band_envelope(spec, n, fs, low, high, oversample=2)
    rate = len(c) / (n / fs)  # samples per second of the envelope
    sq = np.abs(c) ** 2
    sq = sq - sq.mean()
    longest = max(16, int(2 * len(sq) / (min_segments + 1)))
    nperseg = min(2 ** int(math.ceil(math.log2(rate / resolution_hz))), longest, len(sq))
    freqs, psd = sps.welch(sq, fs=rate, window="hann", nperseg=nperseg, detrend="constant")
    amplitude: NDArray[np.float64] = np.sqrt(psd * (freqs[1] - freqs[0]))
    return freqs, amplitude
