"""Every feature function on signals whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from core.ml.vibration import features as F
from core.ml.vibration.bearings import SKF_6205

FS = 12_000.0


def sine(freq: float, amp: float = 2.0, n: int = 12_000, fs: float = FS) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(n) / fs)


def test_rms_peak_to_peak_crest_of_a_sine() -> None:
    x = sine(50.0, amp=2.0) + 0.7  # the DC offset is removed by the time features
    assert F.rms(x) == pytest.approx(2 / np.sqrt(2), rel=1e-4)
    assert F.peak_to_peak(x) == pytest.approx(4.0, rel=1e-3)
    assert F.crest_factor(x) == pytest.approx(np.sqrt(2), rel=1e-3)
    assert F.kurtosis(x) == pytest.approx(1.5, rel=1e-3)


def test_kurtosis_and_skewness_of_known_distributions() -> None:
    rng = np.random.default_rng(0)
    gauss = rng.normal(size=200_000)
    assert F.kurtosis(gauss) == pytest.approx(3.0, abs=0.05)
    assert F.skewness(gauss) == pytest.approx(0.0, abs=0.02)
    expo = rng.exponential(size=200_000)
    assert F.skewness(expo) == pytest.approx(2.0, abs=0.1)
    impulsive = np.zeros(2048)
    impulsive[::256] = 1.0
    assert F.kurtosis(impulsive) > 5  # impacts raise kurtosis


def test_vectorised_over_windows() -> None:
    windows = np.stack([sine(50, 1.0, 2048), sine(50, 3.0, 2048)])
    np.testing.assert_allclose(F.rms(windows), [1 / np.sqrt(2), 3 / np.sqrt(2)], rtol=1e-2)


def test_dominant_frequency_and_spectral_centroid() -> None:
    x = sine(1000.0, 1.0) + sine(3000.0, 0.2)
    assert F.dominant_frequency(x, FS) == pytest.approx(1000.0, abs=1.0)
    # centroid of two lines weighted by power: (1·1000 + 0.04·3000) / 1.04
    assert F.spectral_centroid(x, FS) == pytest.approx((1000 + 0.04 * 3000) / 1.04, rel=0.01)
    _freqs, spec = F.amplitude_spectrum(sine(1000.0, 1.5), FS)
    assert spec.max() == pytest.approx(1.5, rel=0.01)


def test_high_frequency_energy_is_the_power_above_the_cutoff() -> None:
    low, high = sine(500.0, 1.0), sine(4000.0, 2.0)
    assert F.hf_energy(low + high, FS, cutoff=3000.0) == pytest.approx(2.0, rel=1e-3)  # A²/2 of the high tone
    assert F.hf_energy(low, FS, cutoff=3000.0) < 1e-6
    x = np.random.default_rng(1).normal(size=4096)
    assert F.hf_energy(x, FS, cutoff=0.0) == pytest.approx(np.var(x), rel=1e-9)  # Parseval


def test_envelope_spectrum_peaks_at_the_impulse_rate() -> None:
    rate = 107.0
    n = 24_000
    t = np.arange(n) / FS
    x = np.zeros(n)
    x[(np.arange(0, 2, 1 / rate) * FS).astype(int)] = 1.0
    ring = np.exp(-np.arange(100) / FS / 0.0008) * np.sin(2 * np.pi * 3000 * np.arange(100) / FS)
    x = (
        np.convolve(x, ring)[:n]
        + 0.01 * np.random.default_rng(2).normal(size=n)
        + 0.1 * np.sin(2 * np.pi * 30 * t)
    )
    freqs, env = F.envelope_spectrum(x, FS)
    band = (freqs > 20) & (freqs < 500)
    peak = freqs[band][np.argmax(env[band])]
    assert peak == pytest.approx(rate, abs=1.0)
    e_rate = F.band_energy(freqs, env, rate, harmonics=3)
    e_off = F.band_energy(freqs, env, rate * 1.37, harmonics=3)
    assert e_rate > 20 * e_off


def test_bandpass_removes_out_of_band_tones_and_validates_band() -> None:
    y = F.bandpass(sine(100.0) + sine(3000.0), FS, (2000.0, 4000.0))
    assert F.rms(y[1000:-1000]) == pytest.approx(2 / np.sqrt(2), rel=0.02)
    with pytest.raises(ValueError):
        F.bandpass(sine(100.0), FS, (5000.0, 7000.0))


def test_sliding_windows_count_and_overlap() -> None:
    w = F.sliding_windows(np.arange(20_480.0), 2048, 0.5)
    assert w.shape == (19, 2048)
    assert w[1, 0] == 1024
    assert F.sliding_windows(np.arange(4096.0), 2048, 0.0).shape == (2, 2048)
    with pytest.raises(ValueError):
        F.sliding_windows(np.arange(100.0), 2048)


def test_window_features_table() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(0, 0.1, (8192, 2))
    table = F.window_features(data, FS, SKF_6205, 1797, window=2048, overlap=0.5)
    assert list(table.columns) == ["channel", "window", *F.FEATURE_COLUMNS]
    assert len(table) == 2 * 7
    assert table["rms"].to_numpy() == pytest.approx(0.1, rel=0.1)
    assert table["kurtosis"].between(2.5, 3.5).all()
    assert (table[list(F.ENVELOPE_FEATURES)] > 0).all().all()
