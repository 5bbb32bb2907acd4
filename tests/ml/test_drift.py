"""core/ml/drift/statistics.py: a shifted window and a spread change are drift, an unshifted one and an
autocorrelated but stationary series are not; autocorrelation estimate, effective-size KS p-value, PSI on quantile
bins."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import stats

from core.ml.drift.statistics import (
    DriftThresholds,
    DriftWindows,
    autocorrelation,
    detect_drift,
    ks_pvalue_effective,
    psi,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_same_distribution_is_not_drift(rng: np.random.Generator) -> None:
    reference = rng.normal(50.0, 2.0, 500)
    recent = rng.normal(50.0, 2.0, 200)
    result = detect_drift(reference, recent)
    assert not result.drifted
    assert result.reasons == ()
    assert result.ks_pvalue > 0.01
    assert result.psi < 0.1
    assert (result.reference_count, result.recent_count) == (500, 200)


def test_mean_shift_is_drift(rng: np.random.Generator) -> None:
    reference = rng.normal(50.0, 2.0, 500)
    recent = rng.normal(56.0, 2.0, 200)  # +3 standard deviations
    result = detect_drift(reference, recent)
    assert result.drifted
    assert result.ks_pvalue < 1e-6
    assert result.psi > 0.2
    assert result.median_shift > 2.5
    assert len(result.reasons) == 1 and result.reasons[0].startswith("location: KS p-value")


def test_significant_but_small_shift_needs_the_minimum_effect(rng: np.random.Generator) -> None:
    reference = rng.normal(50.0, 2.0, 500)
    recent = rng.normal(53.0, 2.0, 200)  # +1.5 standard deviations: significant, below min_shift 2
    result = detect_drift(reference, recent)
    assert result.ks_pvalue < 1e-6 and 1.0 < result.median_shift < 2.0
    assert not result.drifted
    assert detect_drift(reference, recent, DriftThresholds(min_shift=1.0)).drifted


def test_variance_change_is_drift(rng: np.random.Generator) -> None:
    result = detect_drift(rng.normal(0.0, 1.0, 500), rng.normal(0.0, 3.0, 200))
    assert result.drifted
    assert result.spread_ratio == pytest.approx(3.0, rel=0.25) and result.spread_pvalue < 1e-6
    assert [r.split(":")[0] for r in result.reasons] == ["spread"]


def ar1(rng: np.random.Generator, n: int, phi: float, sigma: float = 1.0) -> np.ndarray:
    """Stationary AR(1) noise with marginal standard deviation ``sigma``."""
    e = np.empty(n)
    e[0] = rng.normal(0.0, sigma)
    shocks = rng.normal(0.0, sigma * np.sqrt(1.0 - phi**2), n)
    for t in range(1, n):
        e[t] = phi * e[t - 1] + shocks[t]
    return e


def day_pair(rng: np.random.Generator, phi: float, n: int = 72) -> tuple[np.ndarray, np.ndarray]:
    """The same 6 hours of two days: a daily cycle (amplitude 2σ) plus independent AR(1) noise each day."""
    cycle = 2.0 * np.cos(2 * np.pi * (np.arange(n) / 288.0 + 0.1))
    return 50.0 + cycle + ar1(rng, n, phi), 50.0 + cycle + ar1(rng, n, phi)


def test_autocorrelated_stationary_series_is_not_drift(rng: np.random.Generator) -> None:
    """The false alarm this module fixes: AR(1) noise (φ = 0.9, like the demo temperature sensors) without any
    change. The independent-samples KS test flags a large share of such pairs; the check here almost none."""
    draws = 200
    naive = flagged = 0
    for _ in range(draws):
        reference, recent = day_pair(rng, phi=0.9)
        naive += stats.ks_2samp(reference, recent).pvalue < 0.01
        result = detect_drift(reference, recent)
        flagged += result.drifted
        assert result.recent_n_eff < 0.5 * result.recent_count
    assert naive / draws > 0.2  # the problem is real on this series
    assert flagged / draws <= 0.02


def test_shift_of_autocorrelated_series_is_drift(rng: np.random.Generator) -> None:
    reference, recent = day_pair(rng, phi=0.9)
    result = detect_drift(reference, recent + 5.0)  # +5 marginal standard deviations
    assert result.drifted and result.reasons[0].startswith("location")
    assert result.ks_pvalue < 0.01 and result.median_shift >= 2.0
    assert result.ks_pvalue > result.ks_pvalue_iid  # the effective-size p-value is the more cautious one


def test_spread_change_of_autocorrelated_series_is_drift(rng: np.random.Generator) -> None:
    """sensor-008's fault: the noise standard deviation ×4 around an unchanged level."""
    reference, _ = day_pair(rng, phi=0.7)
    recent = 50.0 + 4.0 * ar1(rng, 72, 0.7)
    result = detect_drift(reference, recent)
    assert result.drifted
    assert any(r.startswith("spread") for r in result.reasons)
    assert result.spread_ratio > 2.0


def test_stuck_sensor_is_drift(rng: np.random.Generator) -> None:
    reference, _ = day_pair(rng, phi=0.95)
    result = detect_drift(reference, np.full(72, round(float(reference[-1]), 1)))
    assert result.drifted and result.spread_ratio == 0.0


def test_autocorrelation_estimate(rng: np.random.Generator) -> None:
    assert autocorrelation(ar1(rng, 2000, 0.8)) == pytest.approx(0.8, abs=0.05)
    assert autocorrelation(rng.normal(0.0, 1.0, 2000)) == pytest.approx(0.0, abs=0.05)
    trend = np.linspace(0.0, 50.0, 200) + rng.normal(0.0, 1.0, 200)  # a ramp is not autocorrelation
    assert autocorrelation(trend) < 0.2
    assert autocorrelation(np.full(50, 3.0)) == 0.99
    assert autocorrelation([1.0, 2.0, 3.0]) == 0.0


def test_effective_size_ks_pvalue() -> None:
    # the same KS statistic is less significant with fewer effective readings
    assert (
        ks_pvalue_effective(0.3, 72, 72) < ks_pvalue_effective(0.3, 10, 10) < ks_pvalue_effective(0.3, 3, 3)
    )
    # at full size it agrees with scipy's asymptotic two-sample p-value to within a few per cent
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.0, 1.0, 400), rng.normal(0.2, 1.0, 400)
    ks = stats.ks_2samp(a, b, method="asymp")
    assert ks_pvalue_effective(float(ks.statistic), 400, 400) == pytest.approx(ks.pvalue, rel=0.1)


def test_thresholds_decide(rng: np.random.Generator) -> None:
    reference = rng.normal(0.0, 1.0, 400)
    recent = rng.normal(0.3, 1.0, 400)  # a small shift
    lenient = DriftThresholds(ks_pvalue=1e-12, min_shift=5.0)
    strict = DriftThresholds(ks_pvalue=0.5, min_shift=0.1)
    assert not detect_drift(reference, recent, lenient).drifted
    assert detect_drift(reference, recent, strict).drifted


def test_psi_properties(rng: np.random.Generator) -> None:
    reference = rng.normal(0.0, 1.0, 1000)
    assert psi(reference, reference) == pytest.approx(0.0, abs=1e-12)
    # a recent window entirely beyond the reference's range lands in one outer bin: large, finite PSI
    far = psi(reference, reference + 100.0)
    assert np.isfinite(far) and far > 5.0
    # constant reference (stuck sensor): duplicate quantile edges merge, still defined
    assert psi(np.full(100, 3.0), np.full(50, 3.0)) == pytest.approx(0.0, abs=1e-12)
    assert psi(np.full(100, 3.0), np.full(50, 4.0)) > 0.2
    with pytest.raises(ValueError):
        psi([], [1.0])


def test_windows_are_the_recent_span_and_the_same_span_a_day_earlier() -> None:
    end = datetime(2026, 11, 2, 12, tzinfo=UTC)
    w = DriftWindows.ending_at(end, recent_h=6, reference_offset_h=24)
    assert (w.recent_start, w.recent_end) == (datetime(2026, 11, 2, 6, tzinfo=UTC), end)
    assert (w.reference_start, w.reference_end) == (
        datetime(2026, 11, 1, 6, tzinfo=UTC),
        datetime(2026, 11, 1, 12, tzinfo=UTC),
    )
