"""core/ml/drift.py: KS test + PSI flag a shifted window and not an unshifted one; PSI on quantile bins."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from core.ml.drift import DriftThresholds, DriftWindows, detect_drift, psi


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


def test_mean_shift_is_drift_by_both_tests(rng: np.random.Generator) -> None:
    reference = rng.normal(50.0, 2.0, 500)
    recent = rng.normal(53.0, 2.0, 200)  # +1.5 standard deviations
    result = detect_drift(reference, recent)
    assert result.drifted
    assert result.ks_pvalue < 1e-6
    assert result.psi > 0.2
    assert len(result.reasons) == 2 and result.reasons[0].startswith("KS p-value")


def test_variance_change_is_drift(rng: np.random.Generator) -> None:
    result = detect_drift(rng.normal(0.0, 1.0, 500), rng.normal(0.0, 3.0, 200))
    assert result.drifted


def test_thresholds_decide(rng: np.random.Generator) -> None:
    reference = rng.normal(0.0, 1.0, 400)
    recent = rng.normal(0.3, 1.0, 400)  # a small shift
    lenient = DriftThresholds(ks_pvalue=1e-12, psi=5.0)
    strict = DriftThresholds(ks_pvalue=0.5, psi=0.01)
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
