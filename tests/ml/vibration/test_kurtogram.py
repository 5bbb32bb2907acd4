"""Fast kurtogram, cepstral pre-whitening and the squared envelope spectrum on signals of known content."""

from __future__ import annotations

import numpy as np
import pytest

from core.ml.vibration.bearings import SKF_6205
from core.ml.vibration.cepstrum import prewhiten, prewhiten_spectrum
from core.ml.vibration.features import amplitude_spectrum
from core.ml.vibration.kurtogram import fast_kurtogram, grid, squared_envelope_spectrum
from core.ml.vibration.simulator import defect_impacts, simulate_signal

FS = 12_000.0


def test_grid_is_the_one_third_binary_tree() -> None:
    assert grid(FS, 3) == [(0.0, 1), (1.0, 2), (1.6, 3), (2.0, 4), (2.6, 6), (3.0, 8)]


@pytest.mark.parametrize("resonance", [1_700.0, 4_300.0])
def test_kurtogram_picks_the_resonance_band_of_an_impact_train(resonance: float) -> None:
    rng = np.random.default_rng(3)
    impacts = defect_impacts("outer", fs=FS, rpm=1797, geometry=SKF_6205, n_samples=24_000, severity=1.0,
                             resonance_hz=resonance, rng=4)  # fmt: skip
    x = impacts + rng.normal(0, 0.3, impacts.shape) + 0.5 * np.sin(2 * np.pi * 29.95 * np.arange(24_000) / FS)
    kg = fast_kurtogram(x, FS, min_bandwidth=500)
    assert kg.best.low <= resonance <= kg.best.high
    assert kg.best.width <= 1_500 and kg.best.kurtosis > 0.5
    noise = fast_kurtogram(rng.normal(0, 1, 24_000), FS, min_bandwidth=500)
    assert abs(noise.best.kurtosis) < 0.3  # Gaussian noise: SK ≈ 0 in every band
    assert min(r.min() for r in noise.rows) > -0.3
    with pytest.raises(ValueError):
        fast_kurtogram(x, FS, min_bandwidth=7_000)


def test_prewhitening_removes_shaft_and_gear_harmonics() -> None:
    x = simulate_signal("none", fs=FS, n_samples=24_000, shaft_scale=3, shaft_harmonics=12, mesh_order=28,
                        mesh_amp=0.3, noise_sd=0.02, rng=1)  # fmt: skip
    freqs, raw = amplitude_spectrum(x, FS)
    _, white = amplitude_spectrum(prewhiten(x), FS)
    mesh = np.argmin(np.abs(freqs - 28 * 1797 / 60))
    shaft = np.argmin(np.abs(freqs - 1797 / 60))
    for i in (mesh, shaft):
        assert raw[i - 2 : i + 3].max() > 50 * np.median(raw)  # the lines dominate the raw spectrum
        assert white[i - 2 : i + 3].max() < 5 * np.median(white)  # and are gone after CPW
    magnitude = np.abs(prewhiten_spectrum(x))[1:]
    np.testing.assert_allclose(magnitude, 1.0, rtol=1e-9)


def test_squared_envelope_spectrum_shows_the_modulation_rate() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(120_000) / FS
    x = (1 + 0.8 * np.cos(2 * np.pi * 37.0 * t)) * rng.normal(0, 1, t.shape)  # noise AM at 37 Hz
    freqs, ses = squared_envelope_spectrum(x, FS, (2_000, 4_000), resolution_hz=0.5)
    band = (freqs > 5) & (freqs < 500)
    assert freqs[band][np.argmax(ses[band])] == pytest.approx(37.0, abs=0.6)
    assert freqs[1] - freqs[0] <= 0.5 + 1e-9
