"""Cepstral pre-whitening (CPW, Sawalhi & Randall; Borghesani et al. 2013).

The real cepstrum of x is IFFT(log |X|). Setting the whole real cepstrum to zero except at quefrency 0 (the
mean log level) and returning to the time domain with the original phase gives

    x_w = IFFT( X / |X| )

a signal with a flat magnitude spectrum and the phase of x. Discrete components -- shaft harmonics, gear-mesh
lines and their sidebands, electrical lines -- which dominate the magnitude spectrum lose their weight: each line
becomes one bin of unit magnitude among the many other bins. The bearing impacts, being repetitive transients,
keep their phase coherence across the whole resonance band and still produce a strong envelope at their
repetition rate, so their lines in the squared envelope spectrum stand out while the deterministic components no
longer mask them. CPW also equalises the structural resonances, so the frequency band then has to be chosen from
the data (:mod:`core.ml.vibration.kurtogram`) rather than from the amplitude spectrum.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def prewhiten_spectrum(x: np.ndarray) -> NDArray[np.complex128]:
    """One-sided FFT of the cepstrally pre-whitened ``x``: X / |X| (mean removed; 0 where X is 0)."""
    x = np.asarray(x, dtype=float)
    spectrum = np.fft.rfft(x - x.mean())
    magnitude = np.abs(spectrum)
    white: NDArray[np.complex128] = np.where(magnitude > 0, spectrum / np.where(magnitude > 0, magnitude, 1), 0)
    white[0] = 0.0
    return white


def prewhiten(x: np.ndarray) -> NDArray[np.float64]:
    """The cepstrally pre-whitened signal (unit magnitude spectrum, original phase), same length as ``x``."""
    x = np.asarray(x, dtype=float)
    white: NDArray[np.float64] = np.fft.irfft(prewhiten_spectrum(x), len(x))
    return white
