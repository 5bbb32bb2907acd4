"""The run-to-failure simulator: known onset, growing damage, deterministic recordings."""

from __future__ import annotations

import numpy as np
import pytest

from core.ml.vibration.bearings import REXNORD_ZA_2115, SKF_6205
from core.ml.vibration.features import envelope_spectrum, kurtosis, rms
from core.ml.vibration.simulator import impact_rate, simulate_run, simulate_signal


def test_impact_rates() -> None:
    f = SKF_6205.frequencies(1797)
    assert impact_rate("outer", SKF_6205, 1797) == pytest.approx(f["bpfo"])
    assert impact_rate("inner", SKF_6205, 1797) == pytest.approx(f["bpfi"])
    assert impact_rate("ball", SKF_6205, 1797) == pytest.approx(2 * f["bsf"])
    with pytest.raises(ValueError):
        impact_rate("cage", SKF_6205, 1797)


def test_healthy_signal_is_shaft_harmonics_plus_noise() -> None:
    x = simulate_signal("none", fs=12_000, rpm=1800, n_samples=24_000, noise_sd=0.05, rng=0)
    expected = np.sqrt(0.05**2 + (0.05**2 + 0.02**2 + 0.01**2) / 2)
    assert rms(x) == pytest.approx(expected, rel=0.03)
    assert kurtosis(x) == pytest.approx(3.0, abs=0.3)


def test_outer_race_defect_rings_at_bpfo() -> None:
    fs = 12_000.0
    x = simulate_signal("outer", fs=fs, rpm=1797, n_samples=24_000, severity=0.5, rng=1)
    assert kurtosis(x) > 4
    freqs, env = envelope_spectrum(x, fs)
    band = (freqs > 50) & (freqs < 400)
    assert freqs[band][np.argmax(env[band])] == pytest.approx(SKF_6205.frequencies(1797)["bpfo"], abs=1.5)


def test_run_has_known_onset_and_growing_damage() -> None:
    run = simulate_run(40, 25, n_samples=4096, seed=3)
    assert run.geometry is REXNORD_ZA_2115 and run.onset == 25
    assert (run.severities[:25] == 0).all()
    assert (np.diff(run.severities[25:]) > 0).all()
    assert run.severities[-1] == pytest.approx(1.0)
    assert len(run.files) == 40 and run.files["hours_to_end"].iloc[0] == pytest.approx(39 / 6)
    first, last = run.recording(0), run.recording(39)
    assert first.shape == (4096, 4)
    np.testing.assert_array_equal(first, run.recording(0))  # deterministic per file
    assert rms(last[:, 0]) > 3 * rms(first[:, 0])  # faulty bearing 1 at the end of life
    assert rms(last[:, 1]) == pytest.approx(rms(first[:, 1]), rel=0.3)  # healthy bearing 2
    with pytest.raises(ValueError):
        simulate_run(40, 39)


def test_defect_physics_load_zone_and_ball_strikes() -> None:
    from core.ml.vibration.simulator import DefectPhysics, defect_impacts

    kw = {"fs": 12_000.0, "rpm": 1797.0, "geometry": SKF_6205, "n_samples": 24_000, "severity": 1.0, "slip": 0.0}
    loaded = defect_impacts("outer", physics=DefectPhysics(0.9, 60.0, 0.0), rng=1, **kw)
    unloaded = defect_impacts("outer", physics=DefectPhysics(0.9, 60.0, 180.0), rng=1, **kw)
    assert np.abs(unloaded).max() == pytest.approx(0.1 * np.abs(loaded).max(), rel=1e-6)  # 12:00: 1 − depth
    profile = DefectPhysics(0.9, 60.0).load_profile(np.radians(np.array([0.0, 30.0, 59.0, 90.0])))
    assert profile[0] == 1.0 and 0 < profile[2] < profile[1] < 1 and profile[3] == 0.0
    legacy = DefectPhysics().factor(np.array([0.0, np.pi]))  # the original 0.6 + 0.4·cos θ
    np.testing.assert_allclose(legacy, [1.0, 0.2])
    # a ball spall striking the inner race more weakly than the outer makes the BSF line (half the 2·BSF rate)
    equal = defect_impacts("ball", physics=DefectPhysics(0.0), rng=2, **kw)
    alternating = defect_impacts("ball", physics=DefectPhysics(0.0, ball_inner_ratio=0.3), rng=2, **kw)
    bsf = SKF_6205.frequencies(1797)["bsf"]
    for signal, expect_line in ((equal, False), (alternating, True)):
        freqs, env = envelope_spectrum(signal, 12_000.0)
        near = np.abs(freqs - bsf) < 1.0
        local = (np.abs(freqs - bsf) < 15) & ~near
        assert bool(env[near].max() > 5 * np.median(env[local])) is expect_line
    missed = defect_impacts("ball", physics=DefectPhysics(0.0, strike_prob=0.5), rng=3, **kw)
    assert np.sum(missed**2) < 0.7 * np.sum(equal**2)


def test_masking_terms_and_knocks() -> None:
    from core.ml.vibration.features import amplitude_spectrum

    x = simulate_signal("none", fs=12_000, rpm=1800, n_samples=24_000, noise_sd=0.01, mesh_order=28, mesh_amp=0.3,
                        shaft_harmonics=12, rng=0)  # fmt: skip
    freqs, spec = amplitude_spectrum(x, 12_000)
    assert spec[np.argmin(np.abs(freqs - 840))] == pytest.approx(0.3, rel=0.1)  # 28 × 30 Hz mesh line
    assert spec[np.argmin(np.abs(freqs - 870))] == pytest.approx(0.09, rel=0.15)  # +fr sideband (30 %)
    assert spec[np.argmin(np.abs(freqs - 300))] == pytest.approx(0.01 / 8, rel=0.3)  # 10th shaft harmonic
    knocks = simulate_signal("none", fs=12_000, n_samples=24_000, knocks_per_s=3, knock_amp=1.0, rng=1)
    assert kurtosis(knocks) > 5
